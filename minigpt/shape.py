"""A model that fits a time budget on this machine.

When the user gives a time budget but no model shape (--time 10m, or the
quick and default presets), MiniGPT times a few training steps of the
models on a ladder of sizes, on this machine's device and number format,
and picks the largest one that the budget can still feed enough text: at
least TOKENS_PER_PARAMETER training tokens for each parameter. Where
bfloat16 is fast and the number format is left to MiniGPT, both formats are
timed and the faster one for that model is used: small matrices often run
faster in float32, even on CPUs with bfloat16 instructions. A bigger
model learns more from each token but sees fewer of them in the same time;
below that ratio it ends the budget undertrained, above it a bigger model
would have done better (the measurements behind the rule are in the README).

Timings are cached per machine, device, number format, thread count and
PyTorch version in the user's cache folder, so the measurement is paid once.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from minigpt.atomic import atomic_write_bytes
from minigpt.config import TrainConfig
from minigpt.device import autocast, dtype_name, pick_device, pick_dtype
from minigpt.model import GPT, ModelConfig
from minigpt.terminal import format_seconds
from minigpt.trainer import make_optimizer

TOKENS_PER_PARAMETER = 2.0  # the least a budget must feed a model, in training tokens per parameter
PREDICTION_SLACK = 2.5  # how much faster per FLOP a bigger model may run than a smaller one
TRAINING_SHARE = 0.9  # of a budget, what is left for training steps after start-up and evaluations
TIMED_STEPS = 3  # per rung, after WARMUP_STEPS untimed ones (the first calls set up kernels)
WARMUP_STEPS = 2


@dataclass(frozen=True)
class Rung:
    block_size: int
    d_model: int
    n_layers: int
    n_heads: int
    batch_size: int
    lr: float  # larger models want a smaller step

    def settings(self) -> dict[str, Any]:
        return {**asdict(self), "min_lr": self.lr / 20}

    def key(self) -> str:
        return f"{self.block_size}x{self.d_model}x{self.n_layers}x{self.batch_size}"


LADDER = (  # each rung costs about twice the compute per token of the one before
    Rung(64, 64, 2, 4, 12, 5e-3),
    Rung(64, 128, 4, 4, 12, 4e-3),
    Rung(128, 192, 4, 4, 16, 4e-3),
    Rung(128, 256, 4, 4, 24, 4e-3),
    Rung(128, 256, 6, 8, 32, 3e-3),
    Rung(256, 384, 6, 6, 32, 2e-3),
    Rung(256, 512, 8, 8, 48, 1e-3),
    Rung(512, 768, 12, 12, 64, 6e-4),
)
MEASURED_VOCAB = 96  # about a text's characters; the vocabulary barely changes the speed


@dataclass(frozen=True)
class Choice:
    settings: dict[str, Any]  # the config keys it sets (those the user set stay as they are)
    description: str  # what was picked and why, in one line


def choose_shape(config: TrainConfig, explicit_keys: Collection[str],
                 progress: Callable[[str], None] = lambda text: None) -> Choice | None:
    """The shape for config's time budget on this machine, or None when there is
    no budget or the user gave the model's width or depth."""
    if not config.time_budget or {"d_model", "n_layers"} & set(explicit_keys):
        return None
    device = pick_device(config.device)
    formats = [pick_dtype(config.dtype, device)]
    if config.dtype == "auto" and formats[0] != torch.float32:
        formats.append(torch.float32)  # small models can train faster in float32 even where bfloat16 is fast
    train_seconds = max(config.time_budget * TRAINING_SHARE - 5.0, 1.0)
    speeds = SpeedCache(device)
    chosen = None
    for rung in LADDER:
        needed = TOKENS_PER_PARAMETER * parameters(rung) / train_seconds  # tokens/s
        unmeasured = [dtype for dtype in formats if not speeds.get(rung, dtype)]
        if unmeasured and chosen and _predicted(rung, chosen, speeds.fastest(chosen, formats)[1]) < needed:
            break  # no need to time it: even a generous guess of its speed is too slow
        for dtype in unmeasured:
            progress(f"timing a {rung.d_model} x {rung.n_layers}-layer model on this machine…")
            speeds.measure(rung, dtype)
        if speeds.fastest(rung, formats)[1] < needed:
            break  # this rung, and every bigger one, would end the budget undertrained
        chosen = rung
    chosen = chosen or LADDER[0]
    speeds.save()
    dtype, tokens_per_sec = speeds.fastest(chosen, formats)
    settings = {**chosen.settings(), "dtype": dtype_name(dtype)}
    settings = {k: v for k, v in settings.items() if k not in explicit_keys}
    return Choice(settings, describe(config, device, dtype, chosen, tokens_per_sec, train_seconds))


def parameters(rung: Rung) -> int:
    """Weights in the Transformer blocks: the part whose size the budget must feed."""
    return 12 * rung.n_layers * rung.d_model**2


def flops_per_token(rung: Rung) -> int:
    """As GPT.flops_per_token, without building the model."""
    return 6 * (parameters(rung) + rung.d_model * MEASURED_VOCAB) + 12 * rung.n_layers * rung.d_model * rung.block_size


def _predicted(rung: Rung, measured: Rung, measured_speed: float) -> float:
    """A rung's tokens/s guessed from a smaller one's, with room to spare: bigger
    matrices use the machine better, so the guess errs on the fast side."""
    return PREDICTION_SLACK * measured_speed * flops_per_token(measured) / flops_per_token(rung)


def describe(config: TrainConfig, device: torch.device, dtype: torch.dtype, rung: Rung, tokens_per_sec: float,
             train_seconds: float) -> str:
    steps = tokens_per_sec * train_seconds / (rung.batch_size * rung.block_size)
    gflops = tokens_per_sec * flops_per_token(rung) / 1e9
    return (f"{format_seconds(config.time_budget)} on {device.type}, {dtype_name(dtype)} "
            f"(~{gflops:,.0f} GFLOP/s): d_model {rung.d_model} x {rung.n_layers} layers, block {rung.block_size}, "
            f"batch {rung.batch_size}, lr {rung.lr:g}, ~{steps:,.0f} steps, the largest model this budget "
            f"feeds {TOKENS_PER_PARAMETER:g}+ tokens per parameter")


class SpeedCache:
    """Training tokens/s of each rung on this machine, per number format: measured, or read back."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.path = cache_folder() / "speeds.json"
        self._all = self._read()

    def get(self, rung: Rung, dtype: torch.dtype) -> float:
        return self._all.get(machine_key(self.device, dtype), {}).get(rung.key(), 0.0)

    def fastest(self, rung: Rung, formats: list[torch.dtype]) -> tuple[torch.dtype, float]:
        dtype = max(formats, key=lambda d: self.get(rung, d))
        return dtype, self.get(rung, dtype)

    def measure(self, rung: Rung, dtype: torch.dtype) -> None:
        speed = measure_tokens_per_sec(rung, self.device, dtype)
        self._all.setdefault(machine_key(self.device, dtype), {})[rung.key()] = speed

    def save(self) -> None:
        """Keep the timings for next time; a cache that cannot be written only costs a re-measure."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(self._all, indent=1).encode())
        except OSError:
            pass

    def _read(self) -> dict[str, dict[str, float]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):  # none yet, or damaged: measure again
            return {}
        return data if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()) else {}


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minigpt"


def machine_key(device: torch.device, dtype: torch.dtype) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_name()
    return f"{platform.node()} | {name} | {device.type} {dtype_name(dtype)} | " \
           f"{torch.get_num_threads()} threads | torch {torch.__version__}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_tokens_per_sec(rung: Rung, device: torch.device, dtype: torch.dtype) -> float:
    """Train a throwaway model of this shape on random tokens for a few steps."""
    config = ModelConfig(vocab_size=MEASURED_VOCAB, block_size=rung.block_size, d_model=rung.d_model,
                         n_heads=rung.n_heads, n_layers=rung.n_layers)
    generator = torch.Generator().manual_seed(0)
    model = GPT(config).to(device)
    optimizer = make_optimizer(model, TrainConfig(), device)
    x, y = (torch.randint(MEASURED_VOCAB, (rung.batch_size, rung.block_size), generator=generator).to(device)
            for _ in range(2))
    fastest = float("inf")  # the fastest step: other programs can only slow a step down
    for step in range(WARMUP_STEPS + TIMED_STEPS):
        started = time.perf_counter()
        with autocast(device, dtype):
            _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # waits for the device
        if step >= WARMUP_STEPS:
            fastest = min(fastest, time.perf_counter() - started)
    return rung.batch_size * rung.block_size / fastest
