"""Opening a training session: the corpus, the checkpoint to resume (if any)
and a trainer built from them, with what the user should know about the
set-up. minigpt-train and minigpt-tui both start here, so they follow the
same rules.

    session = open_session(config, explicit_keys, data=None, checkpoint=DEFAULT_CHECKPOINT)
    for event in session.trainer.run():
        ...
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from minigpt.plumbing import config as cfg
from minigpt.plumbing.config import MAX_ITERS, TrainConfig, apply_overrides
from minigpt.plumbing.corpus import Corpus, choose_corpus
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.paths import DEFAULT_CHECKPOINT
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
        """Whether the run is over. One that has not begun never is: a time budget too
        short for it is an error once it starts (minigpt.plumbing.clock.BudgetTooShort)."""
        begun = self.trainer.step > 0 or self.trainer.time_spent > 0
        return begun and self.trainer.finished

    def summary(self) -> list[str]:
        """What the run is, in two lines: its text and tokenizer, then its model and where it trains."""
        from minigpt.plumbing.device import dtype_name

        trainer, corpus, c = self.trainer, self.corpus, self.trainer.model_config
        start = f"resuming {self.checkpoint} at step {trainer.step:,}" if self.resumed else "training from scratch"
        return [f"{start} on {corpus.name} ({corpus.length:,} characters); {trainer.tokenizer.kind} tokenizer, "
                f"{c.vocab_size:,} tokens, {trainer.splits.train_chars_per_token:.2f} characters per token",
                f"model: {trainer.num_parameters / 1e6:.2f}M parameters, {c.n_layers} layers, d_model {c.d_model}, "
                f"{c.n_heads} heads, block {c.block_size}; device {trainer.device.type}, {dtype_name(trainer.dtype)}"]

    def add_time(self, seconds: float) -> None:
        """Give the run `seconds` more to train, as --time does on a resume: its budget
        becomes the time it has spent plus seconds (a run of max_iters steps becomes a
        time-budget one), and the schedule is laid over the new total."""
        self.trainer.config = extended_budget(self.trainer.config, self.trainer.time_spent, seconds)

    def finished_note(self) -> str:
        """What to do with a finished run."""
        config = self.trainer.config
        if config.time_budget:
            return (f"{self.checkpoint} has used its time budget of {format_seconds(config.time_budget)}; "
                    "pass --time to train it for longer")
        return (f"{self.checkpoint} is already at step {self.trainer.step} of max_iters {config.max_iters}; "
                "raise --max-iters to train further")


def add_run_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The flags of a training run that minigpt-train and minigpt-tui share: the
    text, the checkpoint, how to start (start_of), and every hyperparameter.
    Returns the "run" group, for a front end's own flags."""
    run = parser.add_argument_group("run")
    run.add_argument("--data", type=Path, default=None, metavar="PATH",
                     help="UTF-8 text to train on (default: data/input.txt, else the built-in corpus)")
    run.add_argument("--out", "--checkpoint", dest="out", type=Path, default=DEFAULT_CHECKPOINT, metavar="PATH",
                     help=f"checkpoint to resume from and save to (default: {DEFAULT_CHECKPOINT})")
    start = run.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="resume from --out; fail if it does not exist")
    start.add_argument("--from-scratch", action="store_true",
                       help="start a new model (a checkpoint at --out is replaced at the first save)")
    run.add_argument("--retime", action="store_true",
                     help="time the model sizes on this machine again for a time budget, not reading the speed cache")
    cfg.add_arguments(parser)
    return run


def start_of(args: argparse.Namespace) -> Start:
    """How a run parsed with add_run_arguments starts."""
    return "scratch" if args.from_scratch else "resume" if args.resume else "auto"


def open_session(config: TrainConfig, explicit_keys: Collection[str], data: Path | None, checkpoint: Path,
                 start: Start = "auto", progress: Callable[[str], None] = lambda text: None,
                 world: World | None = None, retime: bool = False) -> TrainingSession:
    """Read the corpus (data, else data/input.txt, else the built-in one), load
    the checkpoint unless start is "scratch", and build the trainer.
    explicit_keys are the settings the user gave (by file, --set or flag):
    a resumed model keeps its shape, and a note says so when they differ.
    world: this process's place in a torchrun run; rank 0 picks a time budget's
    shape for all of them. retime: time the shapes again rather than read the speed cache."""
    progress("reading the corpus…")
    corpus = choose_corpus(data)  # streamed; a bad file fails here, before PyTorch is imported (seconds)
    from minigpt.data import make_tokenizer
    from minigpt.plumbing.checkpoint import load_checkpoint
    from minigpt.plumbing.distributed import SINGLE
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
        choice = _shared_shape(world or SINGLE, lambda: shape_for_budget(config, explicit_keys, corpus, tokenizer,
                                                                          progress, retime))
        if choice:
            config = apply_overrides(config, choice.settings, source="the shape chosen for the time budget")
    config, shared = shared_grad_accum(config, explicit_keys, (world or SINGLE).size)
    notes += [shared] if shared else []
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


def shape_for_budget(config: TrainConfig, explicit_keys: Collection[str], corpus: Corpus, tokenizer: Tokenizer,
                     progress: Callable[[str], None] = lambda text: None, retime: bool = False) -> Choice | None:
    """The shape chosen for config's time budget on this machine, for this corpus in this tokenizer's
    tokens (minigpt.plumbing.shape), or None when there is no budget or the user gave the shape."""
    from minigpt.plumbing.shape import choose_shape

    return choose_shape(config, explicit_keys, _training_tokens(corpus, config, tokenizer), tokenizer.vocab_size,
                        progress, retime)


def _shared_shape(world: World, choose: Callable[[], Choice | None]) -> Choice | None:
    """The shape rank 0 chooses, on every rank: timed once, and the same model everywhere."""
    from minigpt.plumbing.shape import Choice

    choice = choose() if world.is_main else None
    shared = world.share_from_main(choice and [choice.settings, choice.description])
    return Choice(*shared) if shared else None


def shared_grad_accum(config: TrainConfig, explicit_keys: Collection[str], processes: int,
                      ) -> tuple[TrainConfig, str | None]:
    """Under torchrun, a grad_accum that the processes can share: without one from
    the user, the config's rounded up to a multiple of their number, and a note
    saying so. One the user gave is kept (the trainer refuses it if it cannot be shared)."""
    if "grad_accum" in explicit_keys or config.grad_accum % processes == 0:
        return config, None
    grad_accum = -(-config.grad_accum // processes) * processes
    note = (f"grad_accum = {grad_accum}, a multiple of the {processes} processes of this run: each runs "
            f"{grad_accum // processes} micro-batch(es) of each optimizer step, which sees batch_size x block_size x "
            f"{grad_accum} tokens; pass --grad-accum to choose")
    return replace(config, grad_accum=grad_accum), note


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
        return extended_budget(config, resume.time_spent, config.time_budget)
    if resume.train_config.get("time_budget") and "max_iters" not in explicit_keys:
        return replace(config, time_budget=float(resume.train_config["time_budget"]))
    return config


def extended_budget(config: TrainConfig, time_spent: float, seconds: float) -> TrainConfig:
    """config for a run that has spent time_spent and is given seconds more. A run
    of max_iters steps becomes a time-budget one, ended by the budget alone (as
    --time without --max-iters makes it)."""
    max_iters = config.max_iters if config.time_budget else MAX_ITERS
    return replace(config, time_budget=time_spent + seconds, max_iters=max_iters)


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
