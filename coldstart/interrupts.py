"""Ctrl-C: exit 130 with one line and nothing left running, whatever the command was doing.

A terminal's Ctrl-C reaches the whole foreground process group: this process AND the jsii (node)
runtime that CDK/cdk8s synthesis started. ``install`` makes that runtime ignore it (a preload in
NODE_OPTIONS, ``node_ignores_sigint.cjs``): this process handles Ctrl-C, runs its clean-up, and jsii's
exit hook then stops the runtime gracefully (which also removes its temporary folder). Should the
runtime die anyway (a NODE_OPTIONS the user overrides, a signal to node alone), what surfaces can be
a broken pipe rather than KeyboardInterrupt: ``received`` tells the CLI that any failure after Ctrl-C
is the interruption, and the broken pipe in jsii's exit hook prints no traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

NODE_PRELOAD = Path(__file__).with_name("node_ignores_sigint.cjs")
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C

_received = False


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the operator should know (what keeps running, how to resume)."""


def install() -> None:
    """For the real program only (``python -m coldstart``): tests run the CLI in-process, where
    pytest's own SIGINT handling must stay."""
    signal.signal(signal.SIGINT, _on_sigint)
    # Before jsii starts node; node passes NODE_OPTIONS on to the kernel process it starts.
    os.environ["NODE_OPTIONS"] = f'{os.environ.get("NODE_OPTIONS", "")} --require "{NODE_PRELOAD}"'.strip()


def received() -> bool:
    """Whether Ctrl-C arrived: any failure after it is the interruption's consequence."""
    return _received


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _received
    if not _received:
        _received = True
        sys.unraisablehook = _quiet_broken_pipes(sys.unraisablehook)
    raise KeyboardInterrupt


def _quiet_broken_pipes(previous: Any) -> Any:
    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, BrokenPipeError):  # jsii's exit hook writing to the dead runtime
            previous(unraisable)

    return hook
