"""The phases of a vLLM pod's cold start, in the order they happen. One definition for the
timeline, the budget, the table and the JSON.

Each phase is an interval of the pod's life, and together they tile it: from the pod's creation to
the first successful ``GET /v1/models``, every second belongs to exactly one phase, so the
phases add up to the total whenever all of them are known.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhaseDef:
    key: str
    label: str
    span: str  # what the interval runs from and to


PHASES: tuple[PhaseDef, ...] = (
    PhaseDef("node_ready", "Node ready", "pod created -> node initialized (NodeClaim Initialized / pod scheduled)"),
    PhaseDef("image", "Image pull", "kubelet pull of the vLLM image (0 when already present on machine)"),
    PhaseDef("container_start", "Container start", "node ready -> container started, less the image pull"),
    PhaseDef("restarts", "Restarts", "first container start -> start of the attempt the log shows"),
    PhaseDef("api_init", "vLLM API init", "container started -> weight loading begins (imports, engine process, CUDA)"),
    PhaseDef("weights", "Weights load", "model loading: S3 streaming (Run:ai) and placing the weights on the GPU"),
    PhaseDef("torch_compile", "torch.compile", "Dynamo + Inductor compilation (or loading it from the compile cache)"),
    PhaseDef("cuda_graphs", "CUDA graphs", "CUDA graph capture"),
    PhaseDef("engine_rest", "KV cache, warm-up, ready", "rest of engine init, API server start, first /v1/models 200"),
)

PHASE_KEYS = tuple(p.key for p in PHASES)
BY_KEY = {p.key: p for p in PHASES}

# Phases inside the container whose order the vLLM log reveals (used to say where an attempt stopped).
VLLM_PHASES = ("api_init", "weights", "torch_compile", "cuda_graphs", "engine_rest")
