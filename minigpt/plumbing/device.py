"""Choosing where to train and in which number format."""

from __future__ import annotations

import contextlib
import os

import torch

from minigpt.plumbing.errors import MiniGPTError


class DeviceError(MiniGPTError, RuntimeError):
    """The device asked for is not there."""


def pick_device(name: str = "auto") -> torch.device:
    """`auto` prefers CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device = 'cuda' was asked for, but PyTorch sees no CUDA GPU")
    if name == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device = 'mps' was asked for, but this PyTorch has no MPS support here")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` trains in bfloat16 where the hardware runs it fast: CUDA GPUs
    that support it, and CPUs with native bfloat16 matmuls (AVX512-BF16, AMX).
    Elsewhere float32. bfloat16 keeps float32's range, so no loss scaling."""
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    """"float32", "bfloat16": the name the config uses for a number format."""
    return str(dtype).removeprefix("torch.")


def device_memory(device: torch.device) -> int | None:
    """Total memory of the device in bytes (the machine's RAM for the CPU and
    Apple's unified memory), or None where it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf on Windows
        return None


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass: matmuls in dtype, reductions and
    the weights themselves in float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
