"""The snapshot a synth uses: the published one, a pinned one, or none, and a loud warning when AWS
cannot say which.

Every synth (``python -m k8s_charts.synth``, ``coldstart update-manifests``, the rehearsal and the
CDK app in ``manifestsDeployment = cdk`` mode) reads it here, so all of them degrade the same way:
Parameter Store unreachable is not an error (the manifests are built without a snapshotID, or
with the pinned ID without its metadata) but a WARNING the caller shows. Nothing published is not
a warning here: ``props.resolve`` adds that one, for every caller, from ``published is None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k8s_charts.published import PublishedSnapshot, read_published

ENV_SNAPSHOT_ID = "COLDSTART_SNAPSHOT_ID"  # pins a snapshot for every synth, like --snapshot-id
PINNED_SOURCE = "--snapshot-id"  # PublishedSnapshot.source of a pinned ID (read_published uses it too)


@dataclass(frozen=True)
class SnapshotReading:
    published: PublishedSnapshot | None  # None: nothing published (or unreadable, and no pin)
    warning: str | None = None  # set when Parameter Store could not be read

    @property
    def aws_reachable(self) -> bool:
        return self.warning is None


def client_config() -> Any:
    """Short timeouts and few retries: an unreachable AWS costs seconds, not minutes, before the fallback."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})


def one_line(err: BaseException) -> str:
    """``Type: first line`` of an exception, for a warning that stays on one line."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def pinned_without_metadata(snapshot_id: str, why: str) -> PublishedSnapshot:
    return PublishedSnapshot(snapshot_id=snapshot_id, source=PINNED_SOURCE, notes=(
        f"{why}: using {PINNED_SOURCE} without metadata (Bottlerocket version and digest unknown)",))


def read_snapshot_or_warn(session: Any, parameter_name: str, *, region: str | None, snapshot_id: str | None,
                          consequence: str) -> SnapshotReading:
    """Read ``parameter_name`` (and its metadata) with ``session``; never raises for AWS trouble.

    ``snapshot_id`` pins a snapshot (its metadata is still looked up). When Parameter Store cannot
    be read at all, the reading carries a WARNING ending in ``consequence`` (what the caller does
    instead) and the pin, if any, without metadata. A malformed ID (pinned or stored) raises
    ChartInputError: never guess one.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        ssm = session.client("ssm", region_name=region, config=client_config())
        return SnapshotReading(read_published(ssm, parameter_name, snapshot_id=snapshot_id))
    except (BotoCoreError, ClientError) as err:
        warning = f"WARNING: cannot read {parameter_name} from Parameter Store ({one_line(err)}); {consequence}"
        pinned = pinned_without_metadata(snapshot_id, "Parameter Store unreachable") if snapshot_id else None
        return SnapshotReading(pinned, warning)
