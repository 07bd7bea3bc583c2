"""Run by tests/test_distributed.py under torchrun, one process per rank:

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_worker.py CORPUS OUT

Trains the tiny preset with the library, as minigpt-train does, once for each
grad_accum in GRAD_ACCUMS (with AdamW, then with Muon), and writes what each rank ends with to
OUT/rank{R}-accum{G}.pt: its weights, its losses, and how many times DDP
exchanged gradients (counted by a communication hook, so a sync on a micro-step
that should not have one shows).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import torch
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

from minigpt.plumbing import config as cfg
from minigpt.plumbing.corpus import open_corpus
from minigpt.plumbing.distributed import World, from_environment, join, leave
from minigpt.trainer import StepEvent, Trainer

GRAD_ACCUMS = (2, 4)  # 1 and 2 micro-batches per rank on 2 ranks
OPTIMIZERS = {2: "adamw", 4: "muon"}  # by grad_accum: Muon's step sees the gradients DDP averaged, as AdamW's does
STEPS = 4


def tiny_config(grad_accum: int) -> cfg.TrainConfig:
    """The config every test of the equivalence uses, on any number of processes."""
    return cfg.resolve("tiny", flags={"dtype": "float32", "device": "cpu", "max_iters": STEPS, "eval_interval": 100,
                                      "grad_accum": grad_accum, "batch_size": 4,
                                      "optimizer": OPTIMIZERS.get(grad_accum, "adamw")})


def train(grad_accum: int, corpus_path: str, world: World) -> dict:
    trainer = Trainer(tiny_config(grad_accum), open_corpus(corpus_path), world=world)
    exchanges: list[int] = []  # a bucket each; the hook holds no reference to the trainer, so nothing outlives it

    def counting_hook(state, bucket):  # no annotations: DDP checks them, and they are strings here
        exchanges.append(bucket.index())
        return allreduce_hook(state, bucket)

    trainer.forward_model.register_comm_hook(None, counting_hook)
    losses, exchanged = [], []  # exchanged: the gradient exchanges so far, after each step
    for event in trainer.run():
        if isinstance(event, StepEvent):
            losses.append(event.loss)
            exchanged.append(len(exchanges))
    return {"weights": trainer.model.state_dict(), "losses": losses, "exchanged": exchanged}


def main(corpus_path: str, out: str) -> None:
    torch.set_num_threads(1)
    world = join(from_environment(), "cpu")
    for grad_accum in GRAD_ACCUMS:
        torch.save(train(grad_accum, corpus_path, world), Path(out) / f"rank{world.rank}-accum{grad_accum}.pt")
    gc.collect()  # the DDP wrappers and their hooks go while the process group is still there
    leave(finished_cleanly=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
