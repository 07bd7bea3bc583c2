"""`python -m bench train` (from the repository root): training benchmarks.

Throughput mode: tokens/s and achieved FLOP/s of a preset (of the shape its
time budget picks for the text in --data, where it has one), next to this
machine's matmul throughput on a large square product measured in the same run
with the same threads, so the ratio (model FLOPs utilisation) compares across
machines. The time of a step is all of it, the optimizer's update included
(Muon's Newton-Schulz iterations too); the optimizer's share is reported apart,
with the FLOPs of its products as PyTorch's FLOP counter counts them: work in
the step's time that the model's FLOPs leave out, so MFU cannot pass the
model's share of all the products even if every one ran at the peak. With
compile = true, the first step's time, compilation included, is reported
apart. --profile then shows where a step's time goes, by operation, and the
least time its products alone take (bench.products): the MFU the shape could
reach were all the rest free.

Budget mode (--budget SECONDS): trains a preset with minigpt-train in a fresh
process within the wall-clock budget, interpreter and torch start-up included
(a preset with a time budget of its own trains for this one instead), and
reports its quality: the loss of its last weights on the whole validation
split (minigpt.evaluate.score_split), in nats per token and bits per character,
as the run logged it (within its budget), or, from a run cut short, as the
benchmark scores its last checkpoint.
--seeds N trains N runs, seeds S to S+N-1 (S: the config's seed), and reports
the mean and spread of that figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from bench.products import products_seconds
from bench.timing import fastest_seconds, median_seconds, wait_for
from minigpt.data import make_tokenizer, split_corpus
from minigpt.evaluate import Score, score_split
from minigpt.plumbing import config as cfg
from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.corpus import Corpus, choose_corpus
from minigpt.plumbing.device import dtype_name, pick_device, pick_dtype
from minigpt.plumbing.session import shape_for_budget
from minigpt.plumbing.shape import picks_shape
from minigpt.trainer import StepEvent, Trainer

MATMUL_SIZE = 4096
PROFILED_STEPS = 10
GRACE = 10  # seconds past --budget before a child still training is killed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="classic", choices=list(cfg.PRESETS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter")
    parser.add_argument("--steps", type=int, default=40, help="timed training steps (throughput mode)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first (throughput mode)")
    parser.add_argument("--profile", action="store_true", help="throughput mode: after the timed steps, profile "
                                                               f"{PROFILED_STEPS} more and show where the time goes")
    parser.add_argument("--budget", type=float, help="wall-clock seconds: train and report the val loss reached")
    parser.add_argument("--seeds", type=int, default=1, help="budget mode: train this many runs, one seed each, and "
                                                             "report the mean and spread of their final val loss")
    parser.add_argument("--checkpoints", default="", help="comma-separated seconds at which to report the loss too "
                                                          "(budget mode), e.g. 150")
    parser.add_argument("--data", type=Path, help="the text to train on (budget mode), or to pick a time budget's "
                                                  "shape for (throughput mode); default: minigpt-train's default")
    parser.add_argument("--keep", type=Path, metavar="FOLDER", help="budget mode: keep the run's checkpoint and "
                                                                  "metrics log (model.pt, model.jsonl) in FOLDER "
                                                                  "(with --seeds, in FOLDER/seed-S)")


def run(args: argparse.Namespace) -> None:
    if args.budget:
        run_budget(args)
    else:
        run_throughput(args)


def matmul_flops(dtype: torch.dtype, device: torch.device, size: int = MATMUL_SIZE, repeats: int = 5) -> float:
    """FLOP/s of a size x size matrix product, the fastest of a few: the practical peak of this
    machine. The fastest, not the mean: a product slowed by a busy moment would lower the peak and
    flatter the MFU set against it."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)

    def product() -> None:
        a @ b
        wait_for(device)

    product()  # the first sets up the kernel
    return 2 * size**3 / fastest_seconds(product, repeats)


def run_throughput(args: argparse.Namespace) -> None:
    config = budget_shape(*cfg.resolve_with_explicit_keys(args.preset, assignments=args.set), args.data)
    profiled = PROFILED_STEPS if args.profile else 0
    config = cfg.apply_overrides(config, {"max_iters": args.warmup_steps + args.steps + profiled,
                                          "eval_interval": 10_000_000}, source="benchmark")
    device = pick_device(config.device)
    dtype = pick_dtype(config.dtype, device)
    text = _synthetic_corpus(200_000)
    trainer = Trainer(config, Corpus.from_text(text, "synthetic"))
    runs = (event for event in trainer.run() if isinstance(event, StepEvent))  # the step-0 evaluation: warm-up
    first_step = None  # seconds, the step-0 evaluation and compilation (compile = true) included
    for _ in range(args.warmup_steps):
        started = time.perf_counter()
        next(runs)
        wait_for(device)
        first_step = first_step or time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.steps):
        next(runs)
    wait_for(device)
    seconds = time.perf_counter() - started
    tokens_per_step = config.batch_size * config.block_size * config.grad_accum
    tokens_per_sec = args.steps * tokens_per_step / seconds
    model_flops = tokens_per_sec * trainer.model.flops_per_token()
    peak = {d: matmul_flops(d, device) for d in sorted({torch.float32, dtype}, key=str)}
    name = dtype_name(dtype)
    print(f"preset {args.preset}: {trainer.num_parameters / 1e6:.2f}M params, batch {config.batch_size}, "
          f"block {config.block_size}, d_model {config.d_model}, {config.n_heads} heads, {config.n_layers} layers")
    print(f"device {device.type}, dtype {name}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"training: {tokens_per_sec:,.0f} tokens/s, {model_flops / 1e9:,.1f} GFLOP/s "
          f"({trainer.model.flops_per_token() / 1e6:.2f} MFLOP per token, PaLM formula)")
    for d, flops in peak.items():
        d_name = dtype_name(d)
        print(f"matmul {MATMUL_SIZE}x{MATMUL_SIZE} {d_name}: {flops / 1e9:,.1f} GFLOP/s"
              + (f"  ->  MFU {model_flops / flops:.1%}" if d == dtype else ""))
    optimizer = optimizer_seconds(trainer, device)
    products = optimizer_flops(trainer)
    model_step = trainer.model.flops_per_token() * tokens_per_step
    print(f"optimizer ({config.optimizer}): {optimizer * 1e3:.2f} ms a step, "
          f"{optimizer / (seconds / args.steps):.0%} of a training step (counted in it above)"
          + (f"; its products {products / 1e9:.3g} GFLOP a step against the model's {model_step / 1e9:.3g}: "
             f"MFU {model_step / (model_step + products):.0%} at most, were every product at the peak"
             if products else ""))
    if config.compile and first_step is not None:
        step = seconds / args.steps
        print(f"compile: {first_step - step:.1f} s (the first step took {first_step:.1f} s, a step "
              f"{step * 1e3:.1f} ms; the untrained model's evaluation, compiled too, is counted in it)")
    if args.profile:
        print(f"where {PROFILED_STEPS} training steps' time goes, by operation (PyTorch's profiler):")
        print(where_the_time_goes(runs, device))
        parts = products_seconds(trainer)
        least = sum(parts.values())
        print(f"its products alone, each timed at the step's shapes: "
              f"{', '.join(f'{name} {part * 1e3:.1f} ms' for name, part in parts.items())}; a step takes no less "
              f"than {least * 1e3:.1f} ms (it took {seconds / args.steps * 1e3:.1f}): MFU "
              f"{model_step / least / peak[dtype]:.1%} at most, were everything else in it free")


def budget_shape(config: cfg.TrainConfig, explicit: Collection[str], data: Path | None) -> cfg.TrainConfig:
    """The config with the shape its time budget picks for the text in data (quick's and default's, unless the
    user gave one), as minigpt-train would train it; printed in the line minigpt-train prints."""
    if not picks_shape(config, explicit):
        return config  # no text to read, nor tokenizer to build
    corpus = choose_corpus(data)
    choice = shape_for_budget(config, explicit, corpus, make_tokenizer(config.tokenizer, corpus, config.val_fraction,
                                                                       config.vocab_size))
    if not choice:
        return config
    print(choice.description)
    return cfg.apply_overrides(config, choice.settings, source="the shape chosen for the time budget")


def optimizer_seconds(trainer: Trainer, device: torch.device, repeats: int = 10) -> float:
    """One optimizer step's time, on the gradients of one batch (it moves the weights: the benchmark is done)."""
    x, y = trainer.streams[0].next_batch()
    trainer.model(x.to(device), y.to(device))[1].backward()

    def step() -> None:
        trainer.optimizer.step()
        wait_for(device)

    step()  # the first sets up the optimizer's state
    return median_seconds(step, repeats)


def optimizer_flops(trainer: Trainer) -> int:
    """FLOPs of one optimizer step, as PyTorch's FLOP counter counts them: Muon's
    Newton-Schulz products (AdamW's update does no matrix product). Run on the
    gradients optimizer_seconds left."""
    with FlopCounterMode(display=False) as counter:
        trainer.optimizer.step()
    return counter.get_total_flops()


def where_the_time_goes(steps: Iterator[StepEvent], device: torch.device) -> str:
    """PyTorch's profiler over PROFILED_STEPS more training steps: a table of the
    operations that took the most time (on the GPU, where there is one)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        for _ in range(PROFILED_STEPS):
            next(steps)
        wait_for(device)
    column = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return profiler.key_averages().table(sort_by=column, row_limit=15)


def _synthetic_corpus(n_chars: int) -> str:
    """Throughput does not depend on the text; 65 distinct characters like Shakespeare's."""
    alphabet = "".join(chr(c) for c in range(32, 97))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(len(alphabet), (n_chars,), generator=generator).tolist()
    return "".join(alphabet[i] for i in ids)


def run_budget(args: argparse.Namespace) -> None:
    """One run, or one run per seed with the mean and spread of their quality."""
    if args.seeds == 1:
        budget_run(args, seed=None, keep=args.keep)
        return
    first = cfg.resolve(args.preset, assignments=args.set).seed
    seeds = range(first, first + args.seeds)
    scores = {seed: budget_run(args, seed, args.keep / f"seed-{seed}" if args.keep else None) for seed in seeds}
    scored = [score for score in scores.values() if score]
    print(f"over {len(scored)} of {args.seeds} seeds ({', '.join(map(str, seeds))}): final val loss "
          + (spread([s.loss for s in scored]) + ", " + spread([s.bpc for s in scored]) + " bits/char"
             if scored else "none (no run saved a checkpoint)"))


def spread(values: list[float]) -> str:
    """mean ± standard deviation (min to max)."""
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {deviation:.4f} ({min(values):.4f} to {max(values):.4f})"


def child_settings(args: argparse.Namespace, seed: int | None) -> list[str]:
    """The --set assignments of the run: the user's, the seed, and the benchmark's budget as the run's own
    time budget where the preset has one the user did not set (quick's 150 s with --budget 600 would
    otherwise end at 150 s; default's 600 s with --budget 400 would be cut off with its schedule undone)."""
    settings = args.set + ([f"seed={seed}"] if seed is not None else [])
    config, explicit = cfg.resolve_with_explicit_keys(args.preset, assignments=args.set)
    if config.time_budget and "time_budget" not in explicit and config.time_budget != args.budget:
        settings.append(f"time_budget={args.budget:g}")
    return settings


def budget_run(args: argparse.Namespace, seed: int | None, keep: Path | None) -> Score | None:
    """Run minigpt-train in a child process, read its metrics log and score its last weights."""
    marks = sorted({float(s) for s in args.checkpoints.split(",") if s} | {args.budget})
    settings = child_settings(args, seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.pt"
        command = [sys.executable, "-m", "train_cli", "--preset", args.preset, "--out", str(out),
                   "--from-scratch", "--no-sample"]
        command += [arg for setting in settings for arg in ("--set", setting)]
        if args.data:
            command += ["--data", str(args.data.resolve())]
        started = time.time()
        with open(Path(tmp) / "stderr.txt", "w+") as stderr:
            child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                print(f"minigpt-train is training in a child process (pid {child.pid}) for {args.budget:g} s...")
                child.wait(timeout=args.budget + GRACE)  # a time-budget run ends by itself, just before
            except subprocess.TimeoutExpired:
                pass
            finally:  # out of time, or interrupted: the child goes before its folder does
                child.kill()
                child.wait()
            seconds = time.time() - started
            stderr.seek(0)
            shape = [line.strip() for line in stderr if "GFLOP/s" in line or line.startswith("model:")]
        evals = _read_evals(out.with_suffix(".jsonl"), started)
        final = _logged_final(out.with_suffix(".jsonl")) or final_score(out, args.data)
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            for kept in (out, out.with_suffix(".jsonl")):
                if kept.exists():
                    shutil.copyfile(kept, keep / kept.name)
    print(f"preset {args.preset} {' '.join(settings)} on {args.data or 'the default corpus'}, "
          f"budget {args.budget:g} s (start-up included); minigpt-train ran {seconds:.1f} s, exit code "
          f"{child.returncode}")
    for line in shape:  # the shape chosen for a time budget, and the model
        print(line)
    if final:
        print(f"final val loss (whole validation split, {final.tokens:,} tokens): {final.loss:.4f}, "
              f"{final.bpc:.4f} bits/char")
    else:
        print("final val loss: none (no checkpoint was saved)")
    for mark in marks:
        reached = [e for e in evals if e["seconds"] <= mark]
        if reached:
            best = min(reached, key=lambda e: e["val_loss"])
            print(f"within {mark:g} s: best val loss {best['val_loss']:.4f}, {best['val_bpc']:.4f} bits/char "
                  f"(step {best['step']}, at {best['seconds']:.0f} s; {best['tokens_per_sec']:,.0f} tokens/s)")
        else:
            print(f"within {mark:g} s: no evaluation finished")
    return final


def final_score(checkpoint: Path, data: Path | None) -> Score | None:
    """The whole validation split scored with a run's last saved weights, on the device and in the number
    format it trained in; None if it saved none."""
    if not checkpoint.exists():
        return None
    saved = load_checkpoint(checkpoint)
    config = cfg.apply_overrides(cfg.TrainConfig(), saved.train_config, source=str(checkpoint))
    block_size = saved.model_config.block_size
    splits = split_corpus(choose_corpus(data), saved.tokenizer, config.val_fraction, block_size)
    device = pick_device(config.device)
    model = saved.build_model(device).eval()
    return score_split(model, splits.val, block_size, config.batch_size, splits.val_chars_per_token, device,
                       pick_dtype(config.dtype, device))


def _read_evals(log: Path, started: float) -> list[dict]:
    return [dict(r, seconds=r["time"] - started) for r in _read_log(log) if r["event"] == "eval"]


def _logged_final(log: Path) -> Score | None:
    """The score the run logged at its end, within its budget (minigpt.plumbing.runlog), if it got there."""
    finals = [r for r in _read_log(log) if r["event"] == "final"]
    return Score(finals[-1]["final_val_loss"], finals[-1]["final_val_bpc"], finals[-1]["scored_tokens"]) \
        if finals else None


def _read_log(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
