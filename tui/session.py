"""What the app works on: a trainer built from the corpus and, if there is
one, the checkpoint, exactly as minigpt-train would build it. This module
imports PyTorch; the app imports it in its loader thread, after the first paint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from minigpt.checkpoint import load_checkpoint
from minigpt.corpus import choose_corpus
from minigpt.trainer import Trainer
from tui.options import Options


@dataclass
class Session:
    trainer: Trainer
    corpus_name: str
    corpus_chars: int
    resumed_from: Path | None  # the checkpoint loaded at start, if any
    notes: list[str] = field(default_factory=list)  # things the user should know about the set-up

    @property
    def at_max_iters(self) -> bool:
        return self.trainer.step >= self.trainer.config.max_iters


def open_session(options: Options, progress: Callable[[str], None]) -> Session:
    """Load the corpus and the checkpoint (unless --from-scratch) and build the trainer."""
    progress("reading the corpus…")
    corpus = choose_corpus(options.data)  # streamed: a large file is never held whole as text
    resume, notes = None, []
    if options.checkpoint.exists() and not options.from_scratch:
        progress(f"loading {options.checkpoint}…")
        resume = load_checkpoint(options.checkpoint)
        if options.shape_flags:
            notes.append(f"the model shape comes from {options.checkpoint}; ignoring --"
                         + ", --".join(options.shape_flags).replace("_", "-"))
    progress("building the model…")
    # Absolute: saves go where the app started, whatever the current directory is by then.
    trainer = Trainer(options.config, corpus, checkpoint_path=options.checkpoint.absolute(), resume=resume)
    if trainer.step >= options.config.max_iters:
        notes.append(f"{options.checkpoint} is already at step {trainer.step} of max_iters "
                     f"{options.config.max_iters}; raise --max-iters to train further")
    return Session(trainer, corpus.name, corpus.length, options.checkpoint if resume else None, notes)
