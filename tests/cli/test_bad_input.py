"""Bad input a new user tries (issue 12's list): each is refused before any work starts, naming the
value and the fix, with exit code 2 (usage), and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from settings.config import ConfigError, from_app_context

REPO = Path(__file__).resolve().parents[2]
FIXTURE = str(REPO / "tests" / "report" / "fixtures" / "warm")


def _model_dir(tmp_path: Path) -> str:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return str(folder)


@pytest.mark.parametrize(("args", "fragments"), [
    (["setup-model-s3", "--bucket", "s3://x", "--from-dir", "{model}"], ["--bucket", "'s3://x'", "not a URI"]),
    (["report", FIXTURE, "--save-bundle", "/etc/passwd"], ["--save-bundle", "'/etc/passwd' exists and is not a", "directory"]),
    (["report", FIXTURE, "--chart", "{tmp}/start.gif"], ["--chart", ".svg or .png"]),
], ids=["bucket-uri", "bundle-onto-a-file", "chart-format"])
def test_cli_usage_errors_name_the_value_and_exit_2(cli, tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    args = [a.replace("{model}", str(tmp_path)).replace("{tmp}", str(tmp_path)) for a in args]
    result = cli(*args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.replace("│", " ").split())
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in result.output
    if "--save-bundle" in args:
        assert Path("/etc/passwd").is_file()  # untouched


@pytest.mark.parametrize(("outdir", "fragment"), [
    ("/etc/passwd", "it exists and is not a directory"),
    ("/proc/nope", "it is inside a kernel pseudo file system"),
])
def test_synth_refuses_an_unwritable_outdir_before_starting_node(outdir: str, fragment: str) -> None:
    done = subprocess.run([sys.executable, "-m", "k8s_charts.synth", "--offline", "--model-bucket", "example-bucket",
                           "--region", "us-west-2", "--outdir", outdir], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --outdir: invalid value {outdir!r}; {fragment}; pass a writable folder such as dist"]


def test_an_unprefixed_cdk_context_key_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigError, match=r"^gpuLimit: invalid context key gpuLimit=-4 without the coldstart: prefix.*-c coldstart:gpuLimit="):
        from_app_context({"gpuLimit": -4})


def test_an_unknown_key_gets_a_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"coldstart:gpuLimt: unknown key; did you mean coldstart:gpuLimit\?"):
        from_app_context({"coldstart:gpuLimt": 4})


def test_the_offline_synth_summary_shows_the_apps_warnings(synthesized_app) -> None:  # type: ignore[no-untyped-def]
    """`make demo` prints what the CDK CLI would: the open endpoint and the missing cluster admins."""
    from coldstart.synth_summary import warnings

    found = warnings(synthesized_app.outdir)
    assert any("clusterEndpointCidrs allows 0.0.0.0/0" in line for line in found), found
    assert any("clusterAdminRoleArns is empty" in line for line in found), found


def test_doctor_names_a_manifests_folder_outside_the_working_directory_in_full(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from coldstart.ops.doctor import _shown

    monkeypatch.chdir(REPO)
    assert _shown(REPO / "dist") == "dist"
    assert _shown(tmp_path / "dist") == str(tmp_path / "dist")
