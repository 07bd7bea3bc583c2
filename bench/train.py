"""`python -m bench train` (from the repository root): training benchmarks.

Throughput mode: tokens/s and achieved FLOP/s of a preset, next to this
machine's matmul throughput on a large square product measured in the same run
with the same threads, so the ratio (model FLOPs utilisation) compares across
machines. Budget mode (--budget SECONDS): trains a preset with minigpt-train in
a fresh process and reports the best val loss reached within the wall-clock
budget, interpreter and torch start-up included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from minigpt.plumbing import config as cfg
from minigpt.plumbing.corpus import Corpus
from minigpt.plumbing.device import dtype_name, pick_device, pick_dtype
from minigpt.trainer import StepEvent, Trainer

MATMUL_SIZE = 4096
GRACE = 10  # seconds past --budget before a child still training is killed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="classic", choices=list(cfg.PRESETS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter")
    parser.add_argument("--steps", type=int, default=40, help="timed training steps (throughput mode)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first (throughput mode)")
    parser.add_argument("--budget", type=float, help="wall-clock seconds: train and report the val loss reached")
    parser.add_argument("--checkpoints", default="", help="comma-separated seconds at which to report the loss too "
                                                          "(budget mode), e.g. 150")
    parser.add_argument("--data", type=Path, help="corpus for budget mode (default: minigpt-train's default)")
    parser.add_argument("--keep", type=Path, metavar="FOLDER", help="budget mode: keep the run's checkpoint and "
                                                                  "metrics log (model.pt, model.jsonl) in FOLDER")


def run(args: argparse.Namespace) -> None:
    if args.budget:
        run_budget(args)
    else:
        run_throughput(args)


def matmul_flops(dtype: torch.dtype, device: torch.device, size: int = MATMUL_SIZE, repeats: int = 5) -> float:
    """FLOP/s of a size x size matrix product: the practical peak of this machine."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_throughput(args: argparse.Namespace) -> None:
    config = cfg.resolve(args.preset, assignments=args.set)
    config = cfg.apply_overrides(config, {"max_iters": args.warmup_steps + args.steps,
                                          "eval_interval": 10_000_000}, source="benchmark")
    device = pick_device(config.device)
    dtype = pick_dtype(config.dtype, device)
    text = _synthetic_corpus(200_000)
    trainer = Trainer(config, Corpus.from_text(text, "synthetic"))
    runs = (event for event in trainer.run() if isinstance(event, StepEvent))  # the step-0 evaluation: warm-up
    for _ in range(args.warmup_steps):
        next(runs)
    _sync(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        next(runs)
    _sync(device)
    seconds = time.perf_counter() - started
    tokens_per_sec = args.steps * config.batch_size * config.block_size * config.grad_accum / seconds
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


def _synthetic_corpus(n_chars: int) -> str:
    """Throughput does not depend on the text; 65 distinct characters like Shakespeare's."""
    alphabet = "".join(chr(c) for c in range(32, 97))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(len(alphabet), (n_chars,), generator=generator).tolist()
    return "".join(alphabet[i] for i in ids)


def run_budget(args: argparse.Namespace) -> None:
    """Run minigpt-train in a child process and read its metrics log as it goes."""
    marks = sorted({float(s) for s in args.checkpoints.split(",") if s} | {args.budget})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.pt"
        command = [sys.executable, "-m", "train_cli", "--preset", args.preset, "--out", str(out),
                   "--from-scratch", "--no-sample"]
        command += [arg for setting in args.set for arg in ("--set", setting)]
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
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for kept in (out, out.with_suffix(".jsonl")):
                if kept.exists():
                    shutil.copyfile(kept, args.keep / kept.name)
    print(f"preset {args.preset} {' '.join(args.set)} on {args.data or 'the default corpus'}, "
          f"budget {args.budget:g} s (start-up included); minigpt-train ran {seconds:.1f} s, exit code "
          f"{child.returncode}")
    for line in shape:  # the shape chosen for a time budget, and the model
        print(line)
    for mark in marks:
        reached = [e for e in evals if e["seconds"] <= mark]
        if reached:
            best = min(reached, key=lambda e: e["val_loss"])
            print(f"within {mark:g} s: best val loss {best['val_loss']:.4f}, {best['val_bpc']:.4f} bits/char "
                  f"(step {best['step']}, at {best['seconds']:.0f} s; {best['tokens_per_sec']:,.0f} tokens/s)")
        else:
            print(f"within {mark:g} s: no evaluation finished")


def _read_evals(log: Path, started: float) -> list[dict]:
    if not log.exists():
        return []
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [dict(r, seconds=r["time"] - started) for r in records if r["event"] == "eval"]
