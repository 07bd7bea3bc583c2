"""`python -m bench nanogpt`: karpathy/nanoGPT's CPU recipe on a corpus, timed
as `python -m bench train --budget` times MiniGPT, for a side-by-side
comparison on the same machine in the same sitting.

The recipe is the one nanoGPT's README gives for a laptop CPU (4 layers of
128, block 64, batch 12, no dropout, float32), with its step count and decay
set by --iters. The corpus is split as MiniGPT splits it (the last 10% held
out) and encoded one id per character, as nanoGPT's shakespeare_char does.
The clock starts when the training process is launched, so its start-up
counts, and a val loss counts at the time its line is printed. nanoGPT's own
val loss is a mean over 20 random batches; the figure to compare with
MiniGPT's is the checkpoint it kept (its best evaluation's weights, saved
within the budget) scored on the whole validation split by
minigpt.evaluate.score_split, as `bench train --budget` scores MiniGPT.

nanoGPT is not a dependency: pass a checkout of it with --repo (it needs
numpy, which PyTorch's wheels usually bring).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from minigpt.evaluate import Score, score_split
from minigpt.plumbing.errors import MiniGPTError

RECIPE = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
          "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128",
          "--dropout=0.0"]
EVAL_LINE = re.compile(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)")
VAL_FRACTION = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", type=Path, required=True, help="a checkout of karpathy/nanoGPT")
    parser.add_argument("--data", type=Path, required=True, help="the corpus, a UTF-8 text file")
    parser.add_argument("--iters", type=int, default=2000, help="training steps; the learning rate decays over them")
    parser.add_argument("--budget", type=float, default=150, help="wall-clock seconds, start-up included")
    parser.add_argument("--checkpoints", default="", help="comma-separated seconds at which to report the loss too")


def run(args: argparse.Namespace) -> None:
    if not (args.repo / "train.py").is_file():
        raise MiniGPTError(f"{args.repo}: not a nanoGPT checkout (no train.py); pass --repo with one")
    text = args.data.read_text(encoding="utf-8")
    marks = sorted({float(s) for s in args.checkpoints.split(",") if s} | {args.budget})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "nanoGPT"
        shutil.copytree(args.repo, work, ignore=shutil.ignore_patterns(".git", "data", "out-*"))
        _prepare(text, work / "data" / "bench")
        command = [sys.executable, "train.py", *RECIPE, "--dataset=bench", f"--out_dir={tmp}/out",
                   f"--max_iters={args.iters}", f"--lr_decay_iters={args.iters}"]
        evals = _train(command, work, marks[-1])
        whole = _score_checkpoint(args.repo, Path(tmp) / "out" / "ckpt.pt", text)
    print(f"nanoGPT CPU recipe, {args.iters:,} steps, on {args.data} ({len(text):,} characters), "
          f"budget {args.budget:g} s (start-up included)")
    for mark in marks:
        reached = [e for e in evals if e[0] <= mark]
        if reached:
            seconds, step, val = min(reached, key=lambda e: e[2])
            print(f"within {mark:g} s: best val loss {val:.4f} (step {step}, at {seconds:.0f} s)")
        else:
            print(f"within {mark:g} s: no evaluation finished")
    if evals:
        seconds, step, _ = evals[-1]
        print(f"last evaluation: step {step} at {seconds:.0f} s")
    if whole:
        step, score = whole
        print(f"whole validation split: {score.loss:.4f} ({score.bpc:.4f} bits/char, {score.tokens:,} tokens) "
              f"with the checkpoint nanoGPT kept (step {step})")


def _score_checkpoint(repo: Path, path: Path, text: str) -> tuple[int, Score] | None:
    """(step, score on the whole validation split) of the checkpoint nanoGPT saved, or None if it saved none."""
    if not path.is_file():
        return None
    import torch

    sys.path.insert(0, str(repo))
    try:
        from model import GPT, GPTConfig  # nanoGPT's model.py
    finally:
        sys.path.remove(str(repo))
    saved = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only
    model = GPT(GPTConfig(**saved["model_args"]))
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in saved["model"].items()})
    model.eval()
    index = {c: i for i, c in enumerate(sorted(set(text)))}  # as _prepare encodes it
    ids = torch.tensor([index[c] for c in text[int(len(text) * (1 - VAL_FRACTION)):]], dtype=torch.long)
    block = saved["model_args"]["block_size"]
    score = score_split(model, ids, block, 12, 1.0, torch.device("cpu"), torch.float32)
    return saved["iter_num"], score


def _prepare(text: str, folder: Path) -> None:
    """What nanoGPT's shakespeare_char/prepare.py writes, for any text."""
    import numpy as np

    folder.mkdir(parents=True)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text], dtype=np.uint16)
    split = int(len(ids) * (1 - VAL_FRACTION))
    ids[:split].tofile(folder / "train.bin")
    ids[split:].tofile(folder / "val.bin")
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": index}
    (folder / "meta.pkl").write_bytes(pickle.dumps(meta))  # nanoGPT reads its vocabulary from this file


def _train(command: list[str], work: Path, deadline: float) -> list[tuple[float, int, float]]:
    """Run nanoGPT until it ends or the deadline passes: (seconds, step, val loss) of each evaluation."""
    evals = []
    started = time.time()
    child = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    print(f"nanoGPT is training in a child process (pid {child.pid}) for up to {deadline:g} s...")
    try:
        assert child.stdout is not None
        for line in child.stdout:
            seconds = time.time() - started
            if seconds > deadline:
                break
            if match := EVAL_LINE.search(line):
                evals.append((seconds, int(match[1]), float(match[3])))
    finally:
        child.kill()
        child.wait()
    if child.returncode not in (0, -9) and not evals:
        raise MiniGPTError(f"nanoGPT exited with status {child.returncode} before its first evaluation")
    return evals
