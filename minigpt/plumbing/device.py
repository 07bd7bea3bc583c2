"""Choosing where to train and in which number format, and whether a model fits there."""

from __future__ import annotations

import contextlib
import os

import torch

from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.config import ConfigError
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


def training_memory(model_config: ModelConfig, batch_size: int) -> tuple[int, int]:
    """The model's parameter count, and a lower bound on the bytes training it
    takes: float32 weights, gradients and AdamW's two moments (16 bytes a
    parameter), plus one batch's logits and their gradient. Activations come on top."""
    with torch.device("meta"):  # shapes only, nothing allocated
        parameters = GPT(model_config).num_parameters()
    logits = batch_size * model_config.block_size * model_config.vocab_size
    return parameters, 16 * parameters + 2 * 4 * logits


def check_fits_in_memory(model_config: ModelConfig, batch_size: int, device: torch.device) -> None:
    """Refuse a model that cannot fit, before allocating it: a huge d_model or
    n_layers would otherwise exhaust the machine's memory."""
    parameters, needed = training_memory(model_config, batch_size)
    available = device_memory(device)
    if available is not None and needed > available:
        raise ConfigError(
            f"a model of {parameters:,} parameters (d_model {model_config.d_model}, n_layers {model_config.n_layers}) "
            f"with batch_size {batch_size} and block_size {model_config.block_size} needs at least "
            f"{needed / 2**30:,.1f} GiB to train, but the {device.type} has {available / 2**30:,.1f} GiB; "
            "lower d_model, n_layers, batch_size or block_size")


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass: matmuls in dtype, reductions and
    the weights themselves in float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
