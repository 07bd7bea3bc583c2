"""A model that fits a time budget on this machine.

When the user gives a time budget but no model shape (--time 10m, or the
quick and default presets), MiniGPT times a few training steps of the
models on a ladder of sizes, on this machine's device and number format,
and picks the largest one that the budget can still feed enough text (at
least TOKENS_PER_PARAMETER training tokens for each parameter) and that the
corpus is big enough for (at most PARAMETERS_PER_TOKEN parameters for each
token of it: a model much bigger than its text learns it by heart). A rung is
timed as the run would train it, with the run's optimizer (Muon's step costs
more than AdamW's) and its model's switches (rotary positions, the norm, the
activation). Where bfloat16 is fast and the number format is left to MiniGPT,
both formats are timed and the faster one for that model is used: small
matrices often run faster in float32, even on CPUs with bfloat16
instructions. A bigger model learns more from each token but sees fewer of
them in the same time; below that ratio it ends the budget undertrained,
above it a bigger model would have done better. When the budget goes over
the text many times, the learning rate is lowered (peak_lr) and the
residual paths get dropout (dropout); dropout slows a step, so the chosen
model is then timed with it too, and the steps the run is told to expect are
its own. The measurements behind the rule are in docs/training.md.

Timings are cached per machine, device, number format, thread count,
PyTorch version, optimizer and model switches in the user's cache folder, so
the measurement is paid once, each with the time it was taken. A timing
taken at a busy moment would pick too small a model for good, so a rung that
falls just short of the speed it needs is timed once more (the faster timing
counts), a run of a rung's shape checks the figure and corrects it
(minigpt.plumbing.speedcheck), and --retime times again.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from minigpt.model import GPT, ModelConfig
from minigpt.optim import make_optimizer
from minigpt.plumbing.atomic import atomic_write_bytes
from minigpt.plumbing.config import TrainConfig
from minigpt.plumbing.device import autocast, dtype_name, pick_device, pick_dtype
from minigpt.plumbing.terminal import format_age, format_seconds
from minigpt.trainer import model_config

TOKENS_PER_PARAMETER = 2.0  # the least a budget must feed a model, in training tokens per parameter
PARAMETERS_PER_TOKEN = 4.0  # the most parameters a model may have per token of its training text
FULL_LR_PASSES = 6.0  # beyond this many passes over the text, the learning rate is lowered
DROPOUT_PASSES = 15.0  # beyond this many, the residual paths also drop...
MANY_PASSES_DROPOUT = 0.1  # ...this share of their features
PREDICTION_SLACK = 2.5  # how much faster per FLOP a bigger model may run than a smaller one
TRAINING_SHARE = 0.9  # of a budget, what is left for training steps after start-up and evaluations
WARMUP_STEPS = 2  # untimed steps per rung: the first calls set up kernels
TIMED_STEPS = 5  # then at least this many timed steps...
TIMING_SECONDS = 0.5  # ...for at least this long, up to MAX_TIMED_STEPS: the fastest step counts, and a longer
MAX_TIMED_STEPS = 50  # window gives a busy machine more chances of a quiet moment
RETIME_BELOW = 0.8  # a bigger rung timed at under this share of a smaller one's FLOP/s is timed again
NEAR_MISS = 0.85  # a rung timed between this share of the speed it needs and that speed is timed once more


@dataclass(frozen=True)
class Rung:
    block_size: int
    d_model: int
    n_layers: int
    n_heads: int
    batch_size: int
    lr: float  # larger models want a smaller step

    def settings(self, lr: float) -> dict[str, Any]:
        return {**asdict(self), "lr": lr, "min_lr": lr / 20}

    def key(self) -> str:
        return f"{self.block_size}x{self.d_model}x{self.n_layers}x{self.batch_size}"

    def describe(self) -> str:
        return f"d_model {self.d_model} x {self.n_layers} layers"

    def model_config(self, config: TrainConfig, vocab_size: int) -> ModelConfig:
        """The model a run of config trains at this rung's shape, its switches as config sets them."""
        return model_config(replace(config, block_size=self.block_size, d_model=self.d_model,
                                    n_heads=self.n_heads, n_layers=self.n_layers), vocab_size)


# Each rung costs about twice the compute per token of the one before. Muon's step costs the same
# whatever the batch, so a larger one spreads it: d128 x 4 with batches of 32 x 64 tokens, not 12 x 64,
# trained 16,466 tokens/s rather than 12,728 on 2 CPU cores (MFU 44% against 34%) and scored 1.516 +- 0.004
# against 1.537 at 150 s (docs/training.md, Since GPT-2, measured). 32 x 128 ran faster still, but its
# ~500 steps left the result to the seed (1.508 to 1.554).
LADDER = (
    Rung(64, 64, 2, 4, 12, 5e-3),
    Rung(64, 128, 4, 4, 32, 4e-3),
    Rung(128, 192, 4, 4, 16, 4e-3),
    Rung(128, 256, 4, 4, 24, 4e-3),
    Rung(128, 256, 6, 8, 32, 3e-3),
    Rung(256, 384, 6, 6, 32, 2e-3),
    Rung(256, 512, 8, 8, 48, 1e-3),
    Rung(512, 768, 12, 12, 64, 6e-4),
)


@dataclass(frozen=True)
class Choice:
    settings: dict[str, Any]  # the config keys it sets (those the user set stay as they are)
    description: str  # what was picked and why, in one line


def choose_shape(config: TrainConfig, explicit_keys: Collection[str], corpus_tokens: int, vocab_size: int,
                 progress: Callable[[str], None] = lambda text: None, retime: bool = False) -> Choice | None:
    """The shape for config's time budget on this machine and a training text of
    corpus_tokens tokens from a vocabulary of vocab_size, or None when there is no
    budget or the user gave the model's width or depth. retime: time every rung it
    looks at again, rather than reading the cache."""
    if not picks_shape(config, explicit_keys):
        return None
    device = pick_device(config.device)
    formats = [pick_dtype(config.dtype, device)]
    if config.dtype == "auto" and formats[0] != torch.float32:
        formats.append(torch.float32)  # small models can train faster in float32 even where bfloat16 is fast
    train_seconds = max(config.time_budget * TRAINING_SHARE - 5.0, 1.0)
    speeds = SpeedCache(device, timed_vocab(vocab_size), config, retime)
    chosen = None
    for rung in LADDER:
        if parameters(rung) > PARAMETERS_PER_TOKEN * corpus_tokens:
            break  # this rung, and every bigger one, would learn the text by heart
        needed = TOKENS_PER_PARAMETER * parameters(rung) / train_seconds  # tokens/s
        unmeasured = [dtype for dtype in formats if not speeds.get(rung, dtype)]
        if unmeasured and chosen and speeds.predicted(rung, chosen, formats) < needed:
            break  # no need to time it: even a generous guess of its speed is too slow
        speeds.measure_missing(rung, formats, progress)
        if chosen and speeds.flops(rung, formats) < RETIME_BELOW * speeds.flops(chosen, formats):
            # Bigger matrices use a machine at least as well: this timing was taken at a busy moment.
            speeds.measure(rung, formats, progress)
        if NEAR_MISS * needed <= speeds.fastest(rung, formats)[1] < needed and not speeds.confirmed(rung, formats):
            # A few percent decide the shape here (a busy moment can cost that): a second timing, the faster counts.
            speeds.measure(rung, formats, progress, confirm=True)
        if speeds.fastest(rung, formats)[1] < needed:
            break  # this rung, and every bigger one, would end the budget undertrained
        chosen = rung
    chosen = chosen or LADDER[0]
    speeds.measure_missing(chosen, formats, progress)  # the smallest, when even it was not enough
    speeds.save()
    dtype, tokens_per_sec = speeds.fastest(chosen, formats)
    passes = passes_over(corpus_tokens, tokens_per_sec, train_seconds)
    settings = {**chosen.settings(peak_lr(chosen, passes)), "dropout": dropout(passes), "dtype": dtype_name(dtype)}
    settings = {k: v for k, v in settings.items() if k not in explicit_keys}
    trained = replace(config, **settings)  # what the run trains: what the user set, the rest as chosen
    if trained.dropout != config.dropout:  # dropout costs time: promise the steps of the model with it
        speeds = SpeedCache(device, timed_vocab(vocab_size), trained, retime)
        speeds.measure_missing(chosen, [dtype], progress)
        speeds.save()
    timed = format_age(speeds.age(chosen, dtype))
    description = describe(trained, device, dtype, chosen, speeds.get(chosen, dtype), speeds.flops(chosen, [dtype]),
                           timed, train_seconds, corpus_tokens)
    return Choice(settings, description)


def picks_shape(config: TrainConfig, explicit_keys: Collection[str]) -> bool:
    """Whether a run of config has its shape chosen for it: a time budget, and no width or depth from the user."""
    return bool(config.time_budget) and not {"d_model", "n_layers"} & set(explicit_keys)


def passes_over(corpus_tokens: int, tokens_per_sec: float, train_seconds: float) -> float:
    """How many times a run at this speed goes over its training text."""
    return tokens_per_sec * train_seconds / max(corpus_tokens, 1)


def peak_lr(rung: Rung, passes: float) -> float:
    """The rung's learning rate, lowered when the budget goes over the text many
    times: a smaller step memorises the text more slowly (on a 0.46 MB text at 10
    minutes, 22 passes, half the rate reached a lower validation loss)."""
    return rung.lr * min(1.0, (FULL_LR_PASSES / passes) ** 0.5)


def dropout(passes: float) -> float:
    """Dropout on the residual paths when the budget goes over the text many times: with Muon a
    model learns a small text by heart within the budget, and one that cannot count on any single
    feature learns it far more slowly (Paradise Lost, 0.46 MB, at 10 minutes and ~25 passes: without
    dropout the validation loss passed its best at 4 minutes and ended at 1.72; with 0.1 it ended at
    1.39). At fewer passes it only slows learning: Tiny Shakespeare at 10 minutes and ~9 passes
    ended 0.017 worse with it."""
    return MANY_PASSES_DROPOUT if passes > DROPOUT_PASSES else 0.0


def parameters(rung: Rung) -> int:
    """Weights in the Transformer blocks: the part whose size the budget must feed."""
    return 12 * rung.n_layers * rung.d_model**2


def flops_per_token(rung: Rung, config: TrainConfig, vocab_size: int) -> int:
    """GPT.flops_per_token of the rung's model, built on the meta device: shapes only, nothing allocated."""
    with torch.device("meta"):
        return GPT(rung.model_config(config, vocab_size)).flops_per_token()


def switches(model: ModelConfig) -> str:
    """The model's switches that differ from GPT-2's 2019 choices, as text ("" for that model):
    each changes what a step costs, so timings are kept apart by them."""
    shape = {"vocab_size", "block_size", "d_model", "n_heads", "n_layers"}
    return "".join(f" {field.name}={getattr(model, field.name)}" for field in fields(model)
                   if field.name not in shape and getattr(model, field.name) != field.default)


def timed_vocab(vocab_size: int) -> int:
    """The vocabulary a rung is timed with: the next power of two, so that texts with
    65 or 96 characters share their timings (the output layer's size matters little
    there, but a BPE vocabulary of thousands is a large part of a small model)."""
    return 1 << max(vocab_size - 1, 63).bit_length()


def describe(trained: TrainConfig, device: torch.device, dtype: torch.dtype, rung: Rung, tokens_per_sec: float,
             flops: float, timed: str, train_seconds: float, corpus_tokens: int) -> str:
    """The chosen rung, as the run trains it (trained: the config with the choice applied, tokens_per_sec:
    that model's speed), in one line."""
    steps = tokens_per_sec * train_seconds / (trained.batch_size * trained.block_size)
    passes = passes_over(corpus_tokens, tokens_per_sec, train_seconds)
    return (f"{format_seconds(trained.time_budget)} on {device.type}, {dtype_name(dtype)} "
            f"(~{flops / 1e9:,.0f} GFLOP/s, timed {timed}): {rung.describe()}, block {trained.block_size}, "
            f"batch {trained.batch_size}, lr {trained.lr:.2g}"
            f"{f', dropout {trained.dropout:g}' if trained.dropout else ''}, ~{steps:,.0f} steps, ~{passes:.0f} "
            f"pass{'' if round(passes) == 1 else 'es'} over the text: "
            f"the largest model that this budget feeds {TOKENS_PER_PARAMETER:g}+ tokens per parameter and that "
            "the text can fill")


class SpeedCache:
    """Training tokens/s of each rung on this machine, per number format, and when
    each figure was taken: measured, read back, or corrected by a run. A rung is
    timed as config trains it: with its optimizer and its model's switches."""

    def __init__(self, device: torch.device, vocab_size: int, config: TrainConfig, retime: bool = False) -> None:
        self.device = device
        self.vocab_size = vocab_size
        self.config = config
        self._switches = switches(model_config(config, vocab_size))  # the same for every rung
        self.path = cache_folder() / "speeds.json"
        self._all = self._read()
        self._retime = retime  # read nothing back: only what is timed now counts
        self._timed_now: set[tuple[str, str]] = set()  # (machine, rung) timed by this process

    def _entry(self, rung: Rung, dtype: torch.dtype) -> dict[str, float] | None:
        where = (machine_key(self.device, dtype), self._key(rung))
        if self._retime and where not in self._timed_now:
            return None
        entry = self._all.get(where[0], {}).get(where[1])
        return entry if _is_entry(entry) else None  # one from before timings were dated is timed again

    def get(self, rung: Rung, dtype: torch.dtype) -> float:
        entry = self._entry(rung, dtype)
        return entry["tokens_per_sec"] if entry else 0.0

    def age(self, rung: Rung, dtype: torch.dtype) -> float:
        """Seconds since the rung's figure was taken (the Unix time now when it has none)."""
        entry = self._entry(rung, dtype)
        return wall_clock() - (entry["timed"] if entry else 0.0)

    def record(self, rung: Rung, dtype: torch.dtype, tokens_per_sec: float, confirmed: bool = False) -> None:
        """Keep a figure for the rung, taken now (confirmed: the faster of two timings)."""
        machine = machine_key(self.device, dtype)
        entry = {"tokens_per_sec": tokens_per_sec, "timed": wall_clock()} | ({"confirmed": True} if confirmed else {})
        self._all.setdefault(machine, {})[self._key(rung)] = entry
        self._timed_now.add((machine, self._key(rung)))

    def confirmed(self, rung: Rung, formats: list[torch.dtype]) -> bool:
        """Whether the rung's figure in each format is the faster of two timings."""
        return all((self._entry(rung, dtype) or {}).get("confirmed") is True for dtype in formats)

    def _key(self, rung: Rung) -> str:
        # The 2019 model under AdamW keeps the key it had before there were other optimizers and switches.
        optimizer = "" if self.config.optimizer == "adamw" else f" {self.config.optimizer}"
        return f"{rung.key()}v{self.vocab_size}{optimizer}{self._switches}"

    def predicted(self, rung: Rung, measured: Rung, formats: list[torch.dtype]) -> float:
        """A rung's tokens/s guessed from a smaller one's, with room to spare: bigger
        matrices use the machine better, so the guess errs on the fast side."""
        speed = self.fastest(measured, formats)[1]
        return PREDICTION_SLACK * speed * flops_per_token(measured, self.config, self.vocab_size) / flops_per_token(
            rung, self.config, self.vocab_size)

    def fastest(self, rung: Rung, formats: list[torch.dtype]) -> tuple[torch.dtype, float]:
        dtype = max(formats, key=lambda d: self.get(rung, d))
        return dtype, self.get(rung, dtype)

    def flops(self, rung: Rung, formats: list[torch.dtype]) -> float:
        """The FLOP/s of the rung's fastest number format."""
        return self.fastest(rung, formats)[1] * flops_per_token(rung, self.config, self.vocab_size)

    def measure_missing(self, rung: Rung, formats: list[torch.dtype], progress: Callable[[str], None]) -> None:
        self.measure(rung, [dtype for dtype in formats if not self.get(rung, dtype)], progress)

    def measure(self, rung: Rung, formats: list[torch.dtype], progress: Callable[[str], None],
                confirm: bool = False) -> None:
        """Time the rung in each format. Timed twice by this process, or to confirm the
        figure held (read back or not), the faster figure stands: other programs can
        only slow a step down."""
        for dtype in formats:
            progress(f"timing a {rung.d_model} x {rung.n_layers}-layer model on this machine"
                     f"{' again' if confirm else ''}…")
            speed = measure_tokens_per_sec(rung, self.device, dtype, self.vocab_size, self.config)
            if confirm or (machine_key(self.device, dtype), self._key(rung)) in self._timed_now:
                speed = max(speed, self.get(rung, dtype))
            self.record(rung, dtype, speed, confirmed=confirm)

    def save(self) -> None:
        """Keep the timings for next time; a cache that cannot be written only costs a re-measure."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(self._all, indent=1).encode())
        except OSError:
            pass

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):  # none yet, or damaged: measure again
            return {}
        return data if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()) else {}


def _is_entry(entry: object) -> bool:
    return isinstance(entry, dict) and all(
        isinstance(entry.get(key), int | float) and not isinstance(entry.get(key), bool) and entry[key] > 0
        for key in ("tokens_per_sec", "timed"))


def wall_clock() -> float:
    """Unix seconds now: when a timing is taken (the tests move it on)."""
    return time.time()


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


def measure_tokens_per_sec(rung: Rung, device: torch.device, dtype: torch.dtype, vocab_size: int,
                           config: TrainConfig) -> float:
    """Train a throwaway model of this shape and config's switches on random tokens
    for a few steps, as the trainer's steps run (gradient clipping included) with
    config's optimizer; the fastest step counts."""
    generator = torch.Generator().manual_seed(0)
    model = GPT(rung.model_config(config, vocab_size)).to(device)
    optimizer = make_optimizer(model, config, device, dtype)
    x, y = (torch.randint(vocab_size, (rung.batch_size, rung.block_size), generator=generator).to(device)
            for _ in range(2))
    fastest, timed, timing_started = float("inf"), 0, 0.0
    for step in range(WARMUP_STEPS + MAX_TIMED_STEPS):
        started = time.perf_counter()
        if step == WARMUP_STEPS:
            timing_started = started
        with autocast(device, dtype):
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # waits for the device
        if step >= WARMUP_STEPS:
            ended = time.perf_counter()
            fastest, timed = min(fastest, ended - started), timed + 1
            if timed >= TIMED_STEPS and ended - timing_started >= TIMING_SECONDS:
                break
    return rung.batch_size * rung.block_size / fastest
