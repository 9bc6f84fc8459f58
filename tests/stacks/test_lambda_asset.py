"""The pipeline's Lambda asset, as synthesized: exactly the two packages the handlers need, and every
handler string imports from the asset alone (no repo on the path), as the Lambda runtime will do it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aws_cdk.assertions import Match, Template

from settings import names
from stacks.pipeline.functions import ASSET_PACKAGES, STEPS


def _asset_functions(app) -> dict[str, dict]:  # noqa: ANN001
    """The pipeline's functions whose code is a file asset (S3Key <hash>.zip), by logical ID."""
    template = Template.from_json(app.template(names.PIPELINE_STACK))
    zipped = {"Properties": {"Code": {"S3Key": Match.string_like_regexp(r"\.zip$")}}}
    return {k: r["Properties"] for k, r in template.find_resources("AWS::Lambda::Function", zipped).items()}


def _asset_dirs(app) -> set[Path]:  # noqa: ANN001
    """Where each function's zip is staged in cdk.out (the stack's asset manifest maps hash -> folder)."""
    files = json.loads((app.outdir / f"{names.PIPELINE_STACK}.assets.json").read_text())["files"]
    hashes = {props["Code"]["S3Key"].removesuffix(".zip") for props in _asset_functions(app).values()}
    return {app.outdir / files[h]["source"]["path"] for h in hashes}


def test_the_asset_holds_only_the_handler_packages(synthesized_app) -> None:  # noqa: ANN001
    dirs = _asset_dirs(synthesized_app)
    assert len(dirs) == 1, f"one shared asset expected, got {dirs}"
    asset = dirs.pop()
    assert sorted(p.name for p in asset.iterdir()) == sorted(ASSET_PACKAGES)
    files = [p for p in asset.rglob("*") if p.is_file()]
    assert not [p for p in files if "__pycache__" in p.parts or p.suffix == ".pyc"]
    assert (asset / "settings" / "names.py").is_file()


def test_every_handler_imports_from_the_asset_alone(synthesized_app) -> None:  # noqa: ANN001
    asset = _asset_dirs(synthesized_app).pop()
    handlers = sorted(props["Handler"] for props in _asset_functions(synthesized_app).values())
    assert len(handlers) == len(STEPS)
    # -I: no cwd, no PYTHONPATH, no user site; the asset directory is the only project code on sys.path
    # (site-packages stays: it stands in for the Powertools layer and the runtime's boto3).
    script = ("import importlib, json, sys; sys.path.insert(0, sys.argv[1]); "
              "bad = [h for h in json.loads(sys.argv[2]) if not callable(getattr(importlib.import_module(h.rpartition('.')[0]), h.rpartition('.')[2]))]; "
              "stray = sorted({m.split('.')[0] for m in sys.modules} & {'coldstart', 'stacks', 'k8s_charts', 'app'}); "
              "print(json.dumps({'bad': bad, 'stray': stray, 'file': sys.modules['settings'].__file__}))")
    out = subprocess.run([sys.executable, "-I", "-c", script, str(asset), json.dumps(handlers)], cwd="/",
                         capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bad"] == [] and result["stray"] == []
    assert result["file"].startswith(str(asset))
