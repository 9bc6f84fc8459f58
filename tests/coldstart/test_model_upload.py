"""setup-model-s3 against moto: layout refusal before upload, upload + verify, skip on re-run."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import boto3
import pytest

from coldstart.ops.model_layout import parse_safetensors_header
from settings import names
from settings.config import load_default_config
from tests.coldstart.conftest import REGION, create_stack_with_outputs, make_model, safetensors_bytes

BUCKET = "models-test"
PREFIX = load_default_config().modelPrefix


@pytest.fixture
def s3(aws):
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def upload(cli, model: Path, *extra: str):
    return cli("setup-model-s3", "--bucket", BUCKET, "--from-dir", str(model), *extra)


def test_upload_puts_every_file_directly_under_the_prefix_with_its_sha256(cli, s3, model_dir):
    result = upload(cli, model_dir)

    assert result.exit_code == 0, result.output
    expected = sorted(f"{PREFIX}/{p.name}" for p in model_dir.iterdir())
    assert keys(s3) == expected
    for path in model_dir.iterdir():
        obj = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{path.name}")
        assert obj["Body"].read() == path.read_bytes()
        assert obj["Metadata"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"s3://{BUCKET}/{PREFIX}" in result.output


def test_rerun_skips_unchanged_files_and_uploads_only_the_changed_one(cli, s3, model_dir):
    assert upload(cli, model_dir).exit_code == 0
    # Replace tokenizer.json in S3 by same-size bytes but keep its sha256 metadata: a skipped file stays
    # as it is in S3, a re-uploaded one would be restored. This tells skip from upload without timing.
    key = f"{PREFIX}/tokenizer.json"
    original = s3.get_object(Bucket=BUCKET, Key=key)
    marker = b"x" * original["ContentLength"]
    s3.put_object(Bucket=BUCKET, Key=key, Body=marker, Metadata=original["Metadata"])
    (model_dir / "config.json").write_text('{"model_type": "llama"}')

    result = upload(cli, model_dir)

    assert result.exit_code == 0, result.output
    assert "1 to upload" in result.output and f"{len(list(model_dir.iterdir())) - 1} unchanged (skipped)" in result.output
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == marker
    assert s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/config.json")["Body"].read() == b'{"model_type": "llama"}'


def test_large_file_goes_multipart_and_verifies(cli, s3, tmp_path):
    model = make_model(tmp_path / "big", shards=1, values=(6 * 1024 * 1024) // 4)  # one 6 MiB shard, 5 MiB parts

    result = upload(cli, model, "--chunk-mib", "5", "--concurrency", "4")

    assert result.exit_code == 0, result.output
    shard = next(model.glob("*.safetensors"))
    obj = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{shard.name}")
    assert obj["ETag"].strip('"').endswith("-2")  # two parts: the multipart path, not a single PUT
    assert obj["Body"].read() == shard.read_bytes()
    assert obj["Metadata"]["sha256"] == hashlib.sha256(shard.read_bytes()).hexdigest()
    assert "verified" in result.output


def test_bucket_defaults_to_the_storage_stack_output(cli, s3, model_dir):
    create_stack_with_outputs(names.STORAGE_STACK, {names.OUTPUT_BUCKET_NAME: BUCKET})

    result = cli("setup-model-s3", "--from-dir", str(model_dir))

    assert result.exit_code == 0, result.output
    assert f"{PREFIX}/config.json" in keys(s3)


def test_missing_storage_stack_is_one_line_error(cli, s3, model_dir):
    result = cli("setup-model-s3", "--from-dir", str(model_dir))

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert names.STORAGE_STACK in result.stderr and "Traceback" not in result.output
    assert keys(s3) == []


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("nested", "safetensors in subfolders (sub/model-00002-of-00002.safetensors)"),
        ("no_config", "missing config.json"),
        ("no_tokenizer", "no tokenizer beside the weights"),
        ("truncated_header", "truncated"),
        ("truncated_data", "truncated"),
        ("not_safetensors", "not plausible"),
    ],
)
def test_bad_layout_is_refused_before_anything_is_uploaded(cli, s3, model_dir, breakage, reason):
    shard = model_dir / "model-00002-of-00002.safetensors"
    if breakage == "nested":
        (model_dir / "sub").mkdir()
        shard.rename(model_dir / "sub" / shard.name)
    elif breakage == "no_config":
        (model_dir / "config.json").unlink()
    elif breakage == "no_tokenizer":
        (model_dir / "tokenizer.json").unlink()
    elif breakage == "truncated_header":
        shard.write_bytes(shard.read_bytes()[:20])
    elif breakage == "truncated_data":
        shard.write_bytes(shard.read_bytes()[:-10])
    elif breakage == "not_safetensors":
        shard.write_bytes(b"\xff" * 108)  # not a safetensors file: absurd header length

    result = upload(cli, model_dir)

    assert result.exit_code == 1
    assert reason in result.stderr
    assert result.stderr.startswith("error: refusing") and "Traceback" not in result.output
    assert keys(s3) == []


def test_index_naming_a_missing_shard_is_refused(cli, s3, model_dir):
    (model_dir / "model-00002-of-00002.safetensors").unlink()

    result = upload(cli, model_dir)

    assert result.exit_code == 1
    assert "lists shards that are not beside it: model-00002-of-00002.safetensors" in result.stderr
    assert keys(s3) == []


def test_other_safetensors_under_the_prefix_are_refused_unless_pruned(cli, s3, model_dir):
    stray = f"{PREFIX}/old-model.safetensors"
    s3.put_object(Bucket=BUCKET, Key=stray, Body=safetensors_bytes({"old": 4}))

    refused = upload(cli, model_dir)
    assert refused.exit_code == 1 and "--prune" in refused.stderr
    assert keys(s3) == [stray]

    pruned = upload(cli, model_dir, "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert stray not in keys(s3) and f"{PREFIX}/config.json" in keys(s3)


def test_dry_run_uploads_nothing(cli, s3, model_dir):
    result = upload(cli, model_dir, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "6 to upload" in result.output
    assert keys(s3) == []


def test_hub_download_uses_the_configured_repo(cli, s3, tmp_path, monkeypatch):
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(make_model(tmp_path / "hub"))

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)

    result = cli("setup-model-s3", "--bucket", BUCKET)

    assert result.exit_code == 0, result.output
    assert calls[0][0] == load_default_config().modelSourceId
    assert "*.safetensors" in calls[0][1]["allow_patterns"]
    assert f"{PREFIX}/model-00001-of-00002.safetensors" in keys(s3)


# --- the header parser itself ---------------------------------------------------------------------


def test_header_parser_accepts_a_valid_file():
    data = safetensors_bytes({"a": 3, "b": 5})
    header = parse_safetensors_header(data, len(data), "x")
    assert header["b"]["data_offsets"] == [12, 32]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 10**12) + b"{}", "not plausible"),
        (struct.pack("<Q", 4) + b"{no}", "not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 40) + b'{"a": {"dtype": "F32", "shape": [1]}}   ', "no valid data_offsets"),
        (safetensors_bytes({"a": 2}) + b"junk", "unexpected bytes"),
    ],
)
def test_header_parser_rejects_broken_files(data, message):
    with pytest.raises(ValueError, match=message):
        parse_safetensors_header(data, len(data), "x")
