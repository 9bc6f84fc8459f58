"""The handlers' settings: the pipeline's part of the app config (``settings.config.PipelineSettings``,
where each key is declared once) plus the pipeline's name, which the stack knows only at deploy time.

The stack serialises this object as JSON into ``names.ENV_PIPELINE_CONFIG``; every handler parses it
on each invocation with ``PipelineDefaults.from_env()``, with the same parsers synth used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from typing import Any

from settings import names
from settings.config import ConfigError, PipelineSettings, parse_fields

from .errors import InputValidationError


@dataclass(frozen=True, kw_only=True)
class PipelineDefaults(PipelineSettings):
    pipelineName: str  # value of names.TAG_PIPELINE on everything the pipeline creates (the stack's name)

    @property
    def pull_document_name(self) -> str:
        """The SSM Command document the stack ships for the pull (pull_script.document_content)."""
        return names.pull_document_name(self.pipelineName)

    @classmethod
    def from_settings(cls, settings: PipelineSettings, pipeline_name: str) -> PipelineDefaults:
        return cls(pipelineName=pipeline_name, **settings.pipeline_values())

    # --- serialisation ---
    def to_json(self) -> str:
        return json.dumps({f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)},
                          sort_keys=True)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> PipelineDefaults:
        known = {f.name for f in fields(cls)}
        missing = sorted(known - set(data))
        if missing:
            raise InputValidationError(
                f"{names.ENV_PIPELINE_CONFIG}: missing keys {missing}; redeploy the pipeline stack so the env var matches the code"
            )
        try:
            values = parse_fields(PipelineSettings, data)
        except ConfigError as exc:
            raise InputValidationError(f"{names.ENV_PIPELINE_CONFIG}: {exc}; redeploy the pipeline stack") from None
        return cls(pipelineName=str(data["pipelineName"]), **values)

    @classmethod
    def from_env(cls) -> PipelineDefaults:
        raw = os.environ.get(names.ENV_PIPELINE_CONFIG)
        if not raw:
            raise InputValidationError(f"{names.ENV_PIPELINE_CONFIG}: not set; the pipeline stack sets it on every function")
        return cls.from_mapping(json.loads(raw))
