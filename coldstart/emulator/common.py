"""What every part of the emulator shares: moto's account, the default region and versions, the error type."""

from __future__ import annotations

ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "us-west-2"
DEFAULT_BOTTLEROCKET_VERSION = "1.66.0"
# The CUDA declaration of an image on nvidia/cuda 13.0.x (vLLM's default images since it switched to CUDA 13.0,
# vllm-project/vllm#39878): as copies of those base images' configs in public code show it, not read from the
# vLLM image itself (offline). The pipeline's CUDA gate reads the real one by digest.
VLLM_IMAGE_ENV = [
    "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "NVIDIA_REQUIRE_CUDA=cuda>=13.0 brand=unknown,driver>=535,driver<536 brand=grid,driver>=535,driver<536 "
    "brand=tesla,driver>=535,driver<536 brand=nvidia,driver>=535,driver<536",
    "CUDA_VERSION=13.0.2", "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
]


class EmulatorError(RuntimeError):
    """The template or the emulated environment is not what the emulator expects."""
