"""Opening a training session: the corpus, the checkpoint to resume (if any)
and a trainer built from them, with what the user should know about the
set-up. minigpt-train and minigpt-tui both start here, so they follow the
same rules.

    session = open_session(config, explicit_keys, data=None, checkpoint=DEFAULT_CHECKPOINT)
    for event in session.trainer.run():
        ...
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from minigpt.config import TrainConfig
from minigpt.corpus import Corpus, choose_corpus
from minigpt.errors import MiniGPTError

if TYPE_CHECKING:
    from minigpt.trainer import Trainer

SHAPE_KEYS = ("block_size", "d_model", "n_heads", "n_layers")
Start = Literal["auto", "resume", "scratch"]  # resume if a checkpoint exists / insist on one / ignore it


class SessionError(MiniGPTError, ValueError):
    """The run cannot start: no checkpoint to resume, or nowhere to save one."""


@dataclass
class TrainingSession:
    trainer: Trainer
    corpus: Corpus
    checkpoint: Path  # where it saves, as the user wrote it
    resumed: bool  # whether the trainer was loaded from that checkpoint
    notes: list[str] = field(default_factory=list)  # things the user should know about the set-up

    @property
    def finished(self) -> bool:
        return self.trainer.step >= self.trainer.config.max_iters


def open_session(config: TrainConfig, explicit_keys: Collection[str], data: Path | None, checkpoint: Path,
                 start: Start = "auto", progress: Callable[[str], None] = lambda text: None) -> TrainingSession:
    """Read the corpus (data, else data/input.txt, else the built-in one), load
    the checkpoint unless start is "scratch", and build the trainer.
    explicit_keys are the settings the user gave (by file, --set or flag):
    a resumed model keeps its shape, and a note says so when they differ."""
    progress("reading the corpus…")
    corpus = choose_corpus(data)  # streamed; a bad file fails here, before PyTorch is imported (seconds)
    from minigpt.checkpoint import load_checkpoint
    from minigpt.trainer import Trainer

    resume, notes = None, []
    if checkpoint.exists() and start != "scratch":
        progress(f"loading {checkpoint}…")
        resume = load_checkpoint(checkpoint)
        ignored = [f"{key} = {getattr(config, key)}" for key in SHAPE_KEYS
                   if key in explicit_keys and getattr(config, key) != getattr(resume.model_config, key)]
        if ignored:
            notes.append(f"the model shape comes from {checkpoint}; ignoring {', '.join(ignored)}"
                         " (use --from-scratch for a new model)")
    elif start == "resume":
        raise SessionError(f"{checkpoint}: no checkpoint to resume from (drop --resume to start a new run)")
    progress("building the model…")
    trainer = Trainer(config, corpus, checkpoint_path=checkpoint, resume=resume)
    check_writable(checkpoint)  # after the corpus and vocabulary checks, whose errors say more
    session = TrainingSession(trainer, corpus, checkpoint, resume is not None, notes)
    if session.finished:
        notes.append(f"{checkpoint} is already at step {trainer.step} of max_iters {config.max_iters}; "
                     "raise --max-iters to train further")
    return session


def check_writable(checkpoint: Path) -> None:
    """Fail now, not at the first save minutes from now, if the checkpoint cannot be written."""
    if checkpoint.is_dir():
        raise SessionError(f"{checkpoint}: is a directory; pass --out with a file name such as "
                           f"{checkpoint / 'model.pt'}")
    try:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=checkpoint.parent):
            pass
    except OSError as e:
        raise SessionError(f"{checkpoint.parent}: cannot write a checkpoint there ({e.strerror or e}); "
                           "pass --out with a writable place") from None
