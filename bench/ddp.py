"""`python -m bench ddp` (from the repository root): what training on several
processes with torchrun (DistributedDataParallel) costs or gains.

On the CPU, the same optimizer steps (batch x block x grad_accum tokens each)
trained by one process with all the threads, and by one process per thread
with gloo: does splitting a CPU into ranks beat one process's threading? On a
CUDA GPU, plain training against DDP in a single process (DDP's own overhead),
and a run with NCCL on every GPU.

Each configuration is a real minigpt-train run in child processes (torchrun for
DDP), timed from its metrics log over the steps after the warm-up, so start-up
is left out. Ctrl+C or SIGTERM kills the children (torchrun and its ranks, as a
process group) and removes their folder.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from minigpt.plumbing import config as cfg

LOG_EVERY = 10  # minigpt-train logs a step record every this many steps
RUN_TIMEOUT = 1800  # seconds a configuration may take (a guard against a hang)


@dataclass(frozen=True)
class Setup:
    label: str
    processes: int  # 1 without torchrun
    threads: int  # per process
    settings: tuple[str, ...] = ()  # --set KEY=VALUE for this run
    torchrun: bool = False  # DDP even with one process
    device: str = "cpu"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="classic", choices=list(cfg.PRESETS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter")
    parser.add_argument("--steps", type=int, default=60, help=f"timed steps (a multiple of {LOG_EVERY})")
    parser.add_argument("--warmup-steps", type=int, default=10, help=f"untimed steps first (a multiple of {LOG_EVERY})")
    parser.add_argument("--processes", type=int, default=2, help="CPU: ranks, each with one share of the threads")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="CPU: threads in all")


def run(args: argparse.Namespace) -> None:
    if args.steps % LOG_EVERY or args.warmup_steps % LOG_EVERY or args.steps <= 0 or args.warmup_steps <= 0:
        raise SystemExit(f"--steps and --warmup-steps: expected positive multiples of {LOG_EVERY}")
    config = cfg.resolve(args.preset, assignments=args.set)
    n, threads = args.processes, args.threads
    if threads % n:
        raise SystemExit(f"--threads {threads}: expected a multiple of --processes {n}")
    accum = f"grad_accum={n}"
    print(f"preset {args.preset} {' '.join(args.set)}: batch {config.batch_size} x block {config.block_size} x "
          f"{n} micro-batches = {config.batch_size * config.block_size * n:,} tokens per optimizer step; "
          f"{args.steps} timed steps after {args.warmup_steps}; torch {torch.__version__}, {os.cpu_count()} CPUs")
    setups = [Setup(f"cpu: 1 process x {threads} threads, grad_accum {n}", 1, threads, (accum,)),
              Setup(f"cpu: 1 process x {threads} threads, batch {config.batch_size * n}", 1, threads,
                    (f"batch_size={config.batch_size * n}",)),
              Setup(f"cpu: {n} processes x {threads // n} thread(s), gloo, grad_accum {n}", n, threads // n,
                    (accum,), torchrun=True)]
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        setups += [Setup("cuda: plain, 1 process", 1, 1, device="cuda"),
                   Setup("cuda: DDP, 1 process, nccl", 1, 1, torchrun=True, device="cuda")]
        if gpus > 1:
            setups.append(Setup(f"cuda: DDP, {gpus} processes, nccl, grad_accum {gpus}", gpus, 1,
                                (f"grad_accum={gpus}",), torchrun=True, device="cuda"))
    first: dict[str, float] = {}
    for setup in setups:
        tokens_per_sec = measure(setup, args)
        base = first.setdefault(setup.device, tokens_per_sec)
        print(f"{setup.label:<55} {tokens_per_sec:>12,.0f} tokens/s  ({tokens_per_sec / base:.2f}x the first "
              f"{setup.device} row)")


def measure(setup: Setup, args: argparse.Namespace) -> float:
    """Training tokens/s of one configuration, from its metrics log."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "model.jsonl"
        train = ["-m", "train_cli", "--preset", args.preset, "--out", str(Path(folder) / "model.pt"),
                 "--from-scratch", "--no-sample", "--device", setup.device,
                 "--max-iters", str(args.warmup_steps + args.steps), "--set", "eval_interval=10000000",
                 "--set", "eval_iters=1"]
        train += [arg for setting in (*args.set, *setup.settings) for arg in ("--set", setting)]
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={setup.processes}"]
        command = [sys.executable, *(launcher if setup.torchrun else []), *train]
        env = {**os.environ, "OMP_NUM_THREADS": str(setup.threads)}
        with open(Path(folder) / "stderr.txt", "w+") as stderr:
            run_to_end(command, env, stderr)
        config = cfg.resolve(args.preset, assignments=[*args.set, *setup.settings])
        return tokens_per_second(log, args.warmup_steps, config.batch_size * config.block_size * config.grad_accum)


def run_to_end(command: list[str], env: dict[str, str], stderr) -> None:
    """Run a child in a process group of its own, so that torchrun's ranks go with it however it ends."""
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        child.wait(timeout=RUN_TIMEOUT)
    finally:  # done, out of time or interrupted
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
    if child.returncode != 0:
        stderr.seek(0)
        lines = [line for line in stderr.read().splitlines() if "error" in line.lower()]
        raise SystemExit(f"{' '.join(command)} failed with status {child.returncode}: "
                         f"{lines[0] if lines else 'see its output'}")


def tokens_per_second(log: Path, warmup_steps: int, tokens_per_step: int) -> float:
    """Tokens over the time between the log's first step record after the warm-up and its last
    (the records' own tokens/s is a moving average)."""
    records = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step" and r["step"] >= warmup_steps]
    first, last = steps[0], steps[-1]
    return tokens_per_step * (last["step"] - first["step"]) / (last["elapsed"] - first["elapsed"])
