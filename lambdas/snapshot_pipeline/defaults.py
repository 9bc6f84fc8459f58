"""The handlers' typed defaults: the subset of the stack's AppConfig the pipeline needs at run time.

The stack serialises this object as JSON into the env var ``names.ENV_PIPELINE_CONFIG``; every
handler parses it on each invocation with ``PipelineDefaults.from_env()``. Derived limits (how
many polls each wait may take) are computed here once, so the stack's execution timeout and the
state machine's loop bounds agree.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from . import names
from .errors import InputValidationError


@dataclass(frozen=True)
class PipelineDefaults:
    pipelineName: str  # value of names.TAG_PIPELINE on everything the pipeline creates
    vllmRepository: str
    vllmImageTag: str
    extraImages: tuple[str, ...]
    imagePlatforms: tuple[str, ...]
    kubernetesVersion: str
    snapshotParameterName: str
    builderInstanceType: str
    dataVolumeSizeGiB: int
    dataVolumeIops: int
    dataVolumeThroughput: int
    snapshotRetentionCount: int
    pollIntervalSeconds: int
    maxPolls: int
    pullTimeoutSeconds: int
    triggerDebounceSeconds: int
    fastSnapshotRestoreAzs: tuple[str, ...]

    # --- derived loop bounds (one place: the stack's timeout and the handlers agree) ---
    @property
    def command_max_polls(self) -> int:
        """Polls of the pull command: its own execution timeout plus a delivery allowance of maxPolls."""
        return math.ceil(self.pullTimeoutSeconds / self.pollIntervalSeconds) + self.maxPolls

    @property
    def build_max_seconds(self) -> int:
        """Longest legitimate build: online + pull + stop + snapshot + cleanup waits, plus 15 min of steps."""
        polls = 4 * self.maxPolls + self.command_max_polls
        return polls * self.pollIntervalSeconds + 900

    @property
    def gate_max_polls(self) -> int:
        """Polls an execution waits for an older one: one whole build of the other execution."""
        return math.ceil(self.build_max_seconds / self.pollIntervalSeconds)

    @property
    def execution_timeout_seconds(self) -> int:
        """The state machine timeout: debounce + waiting for one older build + our own build."""
        return self.triggerDebounceSeconds + 2 * self.build_max_seconds

    @property
    def metadata_parameter_name(self) -> str:
        return names.metadata_parameter_name(self.snapshotParameterName)

    @property
    def pull_document_name(self) -> str:
        """The SSM Command document the stack ships for the pull (pull_script.document_content)."""
        return names.pull_document_name(self.pipelineName)

    # --- serialisation ---
    def to_json(self) -> str:
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}, sort_keys=True)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> PipelineDefaults:
        known = {f.name for f in fields(cls)}
        missing = sorted(known - set(data))
        if missing:
            raise InputValidationError(
                f"{names.ENV_PIPELINE_CONFIG}: missing keys {missing}; redeploy the pipeline stack so the env var matches the code"
            )
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)

    @classmethod
    def from_env(cls) -> PipelineDefaults:
        raw = os.environ.get(names.ENV_PIPELINE_CONFIG)
        if not raw:
            raise InputValidationError(f"{names.ENV_PIPELINE_CONFIG}: not set; the pipeline stack sets it on every function")
        return cls.from_mapping(json.loads(raw))
