"""The CRD copies are the released v1.14.1 files, and the committed imports are what `cdk8s import`
generates from them (regenerate_imports.sh is deterministic, so the comparison is byte for byte)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from settings.config import REPO_ROOT

CHARTS = REPO_ROOT / "k8s_charts"
CRDS = CHARTS / "crds"
IMPORTS = CHARTS / "imports"


def git_blob_sha(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_crd_copies_match_the_release_blobs_listed_in_source_txt() -> None:
    source = (CRDS / "SOURCE.txt").read_text()
    assert "Tag:     v1.14.1" in source
    listed = dict(re.findall(r"pkg/apis/crds/(\S+\.yaml)\s+\(git blob ([0-9a-f]{40})\)", source))
    for crd in sorted(CRDS.glob("*.yaml")):
        assert listed.get(crd.name) == git_blob_sha(crd), f"{crd.name} differs from the released file"
    assert {p.name for p in CRDS.glob("*.yaml")} == {"karpenter.k8s.aws_ec2nodeclasses.yaml", "karpenter.sh_nodepools.yaml"}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow  # two `cdk8s import` runs (jsii compiles and generates the Python): ~20 s
def test_committed_imports_are_regenerated_byte_for_byte(tmp_path: Path) -> None:
    run = subprocess.run([str(CHARTS / "regenerate_imports.sh"), str(tmp_path)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    regenerated, committed = _files(tmp_path), _files(IMPORTS)
    assert sorted(regenerated) == sorted(committed)
    changed = [name for name in regenerated if regenerated[name] != committed[name]]
    assert changed == [], "run k8s_charts/regenerate_imports.sh and commit the result"
