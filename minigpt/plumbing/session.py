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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from minigpt.plumbing.config import TrainConfig, apply_overrides
from minigpt.plumbing.corpus import Corpus, choose_corpus
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.terminal import format_seconds

if TYPE_CHECKING:
    from minigpt.model import ModelConfig
    from minigpt.plumbing.checkpoint import Checkpoint
    from minigpt.plumbing.distributed import World
    from minigpt.plumbing.shape import Choice
    from minigpt.tokenizer import Tokenizer
    from minigpt.trainer import Trainer

PROGRESS_BAR = 20  # characters of the bar shown while the tokenizer learns its merges
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
    shape_choice: str | None = None  # for a time budget: the shape picked for this machine, and why

    @property
    def finished(self) -> bool:
        return self.trainer.finished

    def finished_note(self) -> str:
        """What to do with a finished run."""
        config = self.trainer.config
        if config.time_budget:
            return (f"{self.checkpoint} has used its time budget of {format_seconds(config.time_budget)}; "
                    "pass --time to train it for longer")
        return (f"{self.checkpoint} is already at step {self.trainer.step} of max_iters {config.max_iters}; "
                "raise --max-iters to train further")


def open_session(config: TrainConfig, explicit_keys: Collection[str], data: Path | None, checkpoint: Path,
                 start: Start = "auto", progress: Callable[[str], None] = lambda text: None,
                 world: World | None = None) -> TrainingSession:
    """Read the corpus (data, else data/input.txt, else the built-in one), load
    the checkpoint unless start is "scratch", and build the trainer.
    explicit_keys are the settings the user gave (by file, --set or flag):
    a resumed model keeps its shape, and a note says so when they differ.
    world: this process's place in a torchrun run; rank 0 picks a time budget's
    shape for all of them."""
    progress("reading the corpus…")
    corpus = choose_corpus(data)  # streamed; a bad file fails here, before PyTorch is imported (seconds)
    from minigpt.data import make_tokenizer
    from minigpt.plumbing.checkpoint import load_checkpoint
    from minigpt.plumbing.distributed import SINGLE
    from minigpt.plumbing.shape import choose_shape
    from minigpt.trainer import Trainer, model_config

    resume, notes = None, []
    if checkpoint.exists() and start != "scratch":
        progress(f"loading {checkpoint}…")
        resume = load_checkpoint(checkpoint)
        ignored = _ignored_model_keys(model_config(config, resume.model_config.vocab_size), explicit_keys, resume)
        ignored += _ignored_tokenizer_keys(config, explicit_keys, resume)
        if ignored:
            notes.append(f"the model shape and tokenizer come from {checkpoint}; ignoring {', '.join(ignored)}"
                         " (use --from-scratch for a new model)")
    elif start == "resume":
        raise SessionError(f"{checkpoint}: no checkpoint to resume from (drop --resume to start a new run)")
    choice, tokenizer = None, None
    if resume:
        config = continued_budget(config, explicit_keys, resume)
    else:
        tokenizer = make_tokenizer(config.tokenizer, corpus, config.val_fraction, config.vocab_size,
                                   lambda done, total: progress(merges_progress(done, total)))
        corpus_tokens = _training_tokens(corpus, config, tokenizer)
        choice = _shared_shape(world or SINGLE, lambda: choose_shape(config, explicit_keys, corpus_tokens,
                                                                      tokenizer.vocab_size, progress))
        if choice:
            config = apply_overrides(config, choice.settings, source="the shape chosen for the time budget")
    progress("building the model…")
    trainer = Trainer(config, corpus, checkpoint_path=checkpoint, resume=resume, tokenizer=tokenizer,
                      world=world or SINGLE)
    notes += trainer.notes
    check_writable(checkpoint)  # after the corpus and vocabulary checks, whose errors say more
    session = TrainingSession(trainer, corpus, checkpoint, resume is not None, notes,
                              choice.description if choice else None)
    if session.finished:
        notes.append(session.finished_note())
    return session


def _shared_shape(world: World, choose: Callable[[], Choice | None]) -> Choice | None:
    """The shape rank 0 chooses, on every rank: timed once, and the same model everywhere."""
    from minigpt.plumbing.shape import Choice

    choice = choose() if world.is_main else None
    shared = world.share_from_main(choice and [choice.settings, choice.description])
    return Choice(*shared) if shared else None


def merges_progress(done: int, total: int) -> str:
    """A line with a bar, while BPE learns its merges (both front ends show it)."""
    filled = round(PROGRESS_BAR * done / max(total, 1))
    return f"learning the tokenizer {'█' * filled}{'░' * (PROGRESS_BAR - filled)} {done:,}/{total:,} merges"


def _ignored_model_keys(wanted: ModelConfig, explicit_keys: Collection[str], resume: Checkpoint) -> list[str]:
    """The model's shape and switches the user gave that the resumed model does not have."""
    saved = resume.model_config
    return [f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
            for key, value in wanted.to_dict().items() if key in explicit_keys and value != getattr(saved, key)]


def _ignored_tokenizer_keys(config: TrainConfig, explicit_keys: Collection[str], resume: Checkpoint) -> list[str]:
    """The tokenizer settings the user gave that the resumed model's tokenizer does not match."""
    saved = resume.tokenizer
    ignored = []
    if "tokenizer" in explicit_keys and config.tokenizer != saved.kind:
        ignored.append(f"tokenizer = {config.tokenizer}")
    if "vocab_size" in explicit_keys and saved.kind == "bpe" and config.vocab_size != saved.vocab_size:
        ignored.append(f"vocab_size = {config.vocab_size}")
    return ignored


def _training_tokens(corpus: Corpus, config: TrainConfig, tokenizer: Tokenizer) -> int:
    """About how many tokens the training split holds (BPE: measured on a sample of it)."""
    characters = corpus.length * (1 - config.val_fraction)
    if tokenizer.kind == "char":
        return int(characters)
    sample = next(corpus.chunks())[:200_000]
    return int(characters * len(tokenizer.encode(sample)) / max(len(sample), 1))


def continued_budget(config: TrainConfig, explicit_keys: Collection[str], resume: Checkpoint) -> TrainConfig:
    """A resumed time-budget run goes on with its own budget and schedule; --time
    given now adds that much time to what it has spent."""
    if "time_budget" in explicit_keys and config.time_budget:
        return replace(config, time_budget=resume.time_spent + config.time_budget)
    if resume.train_config.get("time_budget") and "max_iters" not in explicit_keys:
        return replace(config, time_budget=float(resume.train_config["time_budget"]))
    return config


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
