"""Offline synth of every stack into ``cdk.out`` and a short summary (stacks, resource counts).

Runs ``app.py`` exactly as ``cdk synth`` would (cdk.json context, cdk-nag on), without the CDK CLI
or AWS credentials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from settings.config import REPO_ROOT


def synth(outdir: Path) -> float:
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("CDK_CONTEXT_JSON", None)  # app.py reads cdk.json itself, as the CLI would pass it
    started = time.monotonic()
    run = subprocess.run([sys.executable, str(REPO_ROOT / "app.py")], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-6000:] + run.stderr[-6000:])
        raise SystemExit(f"synth failed (exit {run.returncode}); see the output above")
    return time.monotonic() - started


def summarize(outdir: Path) -> list[tuple[str, int, Counter[str]]]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    rows = []
    for name, artifact in sorted(manifest["artifacts"].items()):
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        types = Counter(r["Type"] for r in template.get("Resources", {}).values())
        rows.append((name, sum(types.values()), types))
    return rows


def warnings(outdir: Path) -> list[str]:
    """The app's warning annotations (open endpoint, no cluster admins, extended support, ...), which a
    plain ``app.synth()`` leaves in the assembly and only the CDK CLI would print."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    found = []
    for artifact in manifest["artifacts"].values():
        metadata = dict(artifact.get("metadata") or {})
        if artifact.get("additionalMetadataFile"):  # newer assemblies keep a stack's metadata beside the manifest
            metadata.update(json.loads((outdir / artifact["additionalMetadataFile"]).read_text()))
        for path, entries in metadata.items():
            for entry in entries:
                if entry.get("type") == "aws:cdk:warning":
                    data = entry.get("data")
                    found.append(f"{path}: {data if isinstance(data, str) else json.dumps(data)}")
    return sorted(set(found))


def main() -> None:
    outdir = REPO_ROOT / "cdk.out"
    print(f"synthesizing every stack into {outdir.relative_to(REPO_ROOT)}/ (offline, cdk-nag AwsSolutions on) ...", flush=True)
    seconds = synth(outdir)
    rows = summarize(outdir)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'stack'.ljust(width)}  resources  main resource types")
    for name, total, types in rows:
        top = ", ".join(f"{t.split('::')[-1]} x{n}" for t, n in types.most_common(4))
        print(f"{name.ljust(width)}  {total:9d}  {top}")
    print(f"\n{len(rows)} stacks, {sum(r[1] for r in rows)} resources, synthesized in {seconds:.1f}s; "
          "cdk-nag: no unacknowledged findings")
    for line in warnings(outdir):
        print(f"WARNING {line}")


if __name__ == "__main__":
    main()
