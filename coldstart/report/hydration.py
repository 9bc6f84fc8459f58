"""Was the node's data volume hydrated when the pod started? From the evidence, never guessed.

A volume restored from an EBS snapshot is lazy unless it has a volume initialization rate (set in the
EC2NodeClass block device mapping, ``volumeInitializationRate``) or Fast Snapshot Restore is enabled
on the snapshot in the node's availability zone (an EC2 property the cluster does not show: it comes
from ``aws ec2 describe-fast-snapshot-restores --output json`` saved in the bundle). See
docs/coldstart.md, "Hydration".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DATA_DEVICE = "/dev/xvdb"  # the data volume restored from the image-cache snapshot
ZONE_LABEL = "topology.kubernetes.io/zone"
FSR_READY_STATES = ("enabled",)  # "enabling"/"optimizing" volumes are not yet fully initialized at creation

RATE, FSR, LAZY, NO_SNAPSHOT, UNKNOWN = "initialization-rate", "fsr", "lazy", "no-snapshot", "unknown"


@dataclass(frozen=True)
class Hydration:
    state: str  # one of RATE, FSR, LAZY, NO_SNAPSHOT, UNKNOWN
    detail: str
    snapshot_id: str | None = None
    rate_mib_s: int | None = None
    zone: str | None = None

    @property
    def lazy(self) -> bool | None:
        """True when the start read a lazily loaded volume, None when the evidence does not tell."""
        return {LAZY: True, RATE: False, FSR: False, NO_SNAPSHOT: False}.get(self.state)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "lazy": self.lazy, "detail": self.detail, "snapshotId": self.snapshot_id,
                "initializationRateMiBs": self.rate_mib_s, "zone": self.zone}


def _data_volume(nodeclass: dict[str, Any]) -> dict[str, Any] | None:
    mappings = (nodeclass.get("spec") or {}).get("blockDeviceMappings") or []
    by_device = {m.get("deviceName"): (m.get("ebs") or {}) for m in mappings}
    if DATA_DEVICE in by_device:
        return by_device[DATA_DEVICE]
    return next((ebs for ebs in by_device.values() if ebs.get("snapshotID")), None)


def hydration_of(nodeclaim: dict[str, Any] | None, nodeclasses: list[dict[str, Any]],
                 fsr: list[dict[str, Any]] | None) -> Hydration:
    """The data volume's hydration for the node of ``nodeclaim``.

    ``fsr`` is the ``FastSnapshotRestores`` list of describe-fast-snapshot-restores, or None when the
    bundle does not hold it (then a volume without an initialization rate is ``unknown``, not lazy).
    """
    if nodeclaim is None:
        return Hydration(UNKNOWN, "unknown: no NodeClaim for the pod's node")
    ref = ((nodeclaim.get("spec") or {}).get("nodeClassRef") or {}).get("name")
    zone = ((nodeclaim.get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL)
    nodeclass = next((nc for nc in nodeclasses if (nc.get("metadata") or {}).get("name") == ref), None)
    if nodeclass is None:
        return Hydration(UNKNOWN, f"unknown: EC2NodeClass {ref or '?'} is not in the evidence "
                                  "(save it with kubectl get ec2nodeclasses -o json)", zone=zone)
    ebs = _data_volume(nodeclass)
    snapshot = (ebs or {}).get("snapshotID")
    if not snapshot:
        return Hydration(NO_SNAPSHOT, f"EC2NodeClass {ref}: the data volume is not restored from a snapshot "
                                      "(nothing to hydrate; the image is pulled)", zone=zone)
    rate = (ebs or {}).get("volumeInitializationRate")
    if rate:
        return Hydration(RATE, f"initialization rate {rate} MiB/s ({snapshot}, EC2NodeClass {ref})",
                         snapshot_id=snapshot, rate_mib_s=int(rate), zone=zone)
    if fsr is None:
        return Hydration(UNKNOWN, f"unknown: no initialization rate on {snapshot}; Fast Snapshot Restore is not in the "
                                  "evidence (save aws ec2 describe-fast-snapshot-restores --output json as fsr.json)",
                         snapshot_id=snapshot, zone=zone)
    on = [r for r in fsr if r.get("SnapshotId") == snapshot and r.get("State") in FSR_READY_STATES
          and (zone is None or r.get("AvailabilityZone") == zone)]
    if on:
        return Hydration(FSR, f"Fast Snapshot Restore on {snapshot} in {on[0].get('AvailabilityZone')} "
                              "(if the AZ's credit bucket was not empty)", snapshot_id=snapshot, zone=zone)
    if zone is None:
        return Hydration(UNKNOWN, f"unknown: no initialization rate on {snapshot}, and the node's zone is not in the "
                                  "NodeClaim labels", snapshot_id=snapshot)
    return Hydration(LAZY, f"lazy: no initialization rate and no Fast Snapshot Restore on {snapshot} in {zone}; "
                           "first reads of the image's files went to S3", snapshot_id=snapshot, zone=zone)
