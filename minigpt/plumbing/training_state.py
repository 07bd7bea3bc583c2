"""A training run's whole state, saved to its checkpoint and restored from it,
so that a resumed run goes on exactly as an unbroken one would.

Beyond the weights, that is the optimizer's moments, the step, the best
validation loss, the time used of a budget, and every random stream:
PyTorch's (dropout) and each micro-batch slot's batch sampler. Under torchrun
each rank draws the batches of its own slots (World.slots): saving gathers
every slot's stream, in slot order, and rank 0 writes the file; restoring
gives each rank its slots' streams, whatever the number of processes now.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from minigpt.optim import apply_config
from minigpt.plumbing.checkpoint import Checkpoint, save_checkpoint

if TYPE_CHECKING:
    from minigpt.trainer import Trainer


def capture(trainer: Trainer, batch_streams: list[torch.Tensor] | None = None) -> Checkpoint:
    """What a save writes. batch_streams: the generator state of every slot's
    batch sampler, in slot order (by default this process's own)."""
    if batch_streams is None:
        batch_streams = [stream.generator.get_state() for stream in trainer.streams]
    rng = {"torch": torch.get_rng_state(), "batch_streams": batch_streams}
    if trainer.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return Checkpoint(
        model_state=trainer.model.state_dict(),
        model_config=trainer.model_config,
        tokenizer=trainer.tokenizer,
        step=trainer.step,
        train_config=trainer.config.to_dict(),
        best_val_loss=trainer.best_val_loss,
        optimizer_state=trainer.optimizer.state_dict(),
        rng_state=rng,
        time_spent=trainer.time_spent,
    )


def save_state(trainer: Trainer, path: Path) -> None:
    """Write the trainer's state to path, atomically. Every rank calls it
    together (it gathers their batch streams) and rank 0 writes the file;
    an OSError from the write is raised there, and the previous file is intact."""
    world = trainer.world
    streams = [state for rank in world.gather([s.generator.get_state() for s in trainer.streams]) for state in rank]
    if world.is_main:
        save_checkpoint(path, capture(trainer, streams))


def restore_state(trainer: Trainer, checkpoint: Checkpoint) -> list[str]:
    """Put the checkpoint's state into a new trainer; returns what the user
    should know about it (an optimizer state that does not fit this run's
    optimizer, a data order that differs from an unbroken run's)."""
    trainer.model.load_state_dict(checkpoint.model_state)
    notes = []
    saved_optimizer = checkpoint.train_config.get("optimizer", "adamw")  # checkpoints before Muon: AdamW's
    if checkpoint.optimizer_state and saved_optimizer == trainer.config.optimizer:
        trainer.optimizer.load_state_dict(checkpoint.optimizer_state)
        apply_config(trainer.optimizer, trainer.config)  # the saved state carries the old run's values
    elif checkpoint.optimizer_state:
        notes.append(f"the checkpoint's optimizer state is {saved_optimizer}'s and this run uses "
                     f"{trainer.config.optimizer}: the optimizer state starts fresh (the weights are kept)")
    trainer.step = checkpoint.step
    trainer.best_val_loss = checkpoint.best_val_loss
    trainer.time_spent = checkpoint.time_spent
    rng = checkpoint.rng_state or {}
    if "torch" in rng and trainer.world.is_main:  # rank 0's dropout stream; the others keep their seeds
        torch.set_rng_state(rng["torch"])
    if "cuda" in rng and trainer.device.type == "cuda":
        torch.cuda.set_rng_state_all(rng["cuda"])
    return notes + _restore_streams(trainer, rng)


def _restore_streams(trainer: Trainer, rng: dict) -> list[str]:
    """Each slot's batch stream goes on where it stopped, whichever rank runs
    it now: a resume is exact on any number of processes that divides
    grad_accum. With another grad_accum, slots the checkpoint lacks start
    from their seed, and a note says the data order differs from an unbroken run."""
    saved = rng.get("batch_streams") or ([rng["batches"]["generator"]] if "batches" in rng else [])
    if not saved:
        return []
    for slot, stream in zip(trainer.slots, trainer.streams, strict=True):
        if slot < len(saved):
            stream.generator.set_state(saved[slot])
    grad_accum = trainer.config.grad_accum
    if len(saved) == grad_accum:
        return []
    change = "new ones start from their seed" if len(saved) < grad_accum else "extra ones end"
    return [f"the checkpoint holds {len(saved)} batch stream(s) and grad_accum is {grad_accum}: the {change}, "
            "so the data order differs from an unbroken run's"]
