"""What the app tells a learner about the run, in the Log and in notifications:
the numbers the library gives, with what they mean."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from minigpt.plumbing.terminal import format_seconds

if TYPE_CHECKING:  # these import PyTorch, which the app loads after its first paint
    from minigpt.plumbing.session import TrainingSession
    from minigpt.trainer import EvalEvent, FinalScoreEvent


def uniform_loss(vocab_size: int) -> float:
    """The loss of a model that gives every token the same probability: ln V nats a token.
    An untrained model starts near it; anything learned takes the loss below."""
    return math.log(vocab_size)


def session_lines(session: TrainingSession) -> list[str]:
    """The Log's first lines about a session: what the run is (as minigpt-train says it), and the loss to beat."""
    from minigpt.evaluate import bits_per_character

    trainer = session.trainer
    vocab, chars_per_token = trainer.tokenizer.vocab_size, trainer.splits.train_chars_per_token
    loss = uniform_loss(vocab)
    return [*session.summary(),
            f"a model that guesses every one of the {vocab:,} tokens alike has loss ln {vocab:,} = {loss:.2f} "
            f"({bits_per_character(loss, chars_per_token):.2f} bits per character): training starts near it, "
            "and every bit below it is learned (the line on the chart)"]


def evaluation_line(event: EvalEvent) -> str:
    return (f"step {event.step:,}: train {event.train_loss:.4f}  val {event.val_loss:.4f}  "
            f"({event.val_bpc:.3f} bits/char)")


def final_score_line(event: FinalScoreEvent) -> str:
    return (f"step {event.step:,}: final val loss {event.val_loss:.4f} ({event.val_bpc:.3f} bits/char) "
            f"on all {event.tokens:,} val tokens")


def memorising_note(event: EvalEvent) -> str:
    return (f"The model has begun to memorise its text: at step {event.step:,} its val loss "
            f"{event.val_loss:.3f} is {event.val_loss - event.train_loss:.3f} above its train loss, a gap that "
            "keeps growing. Text it has not seen gains less from here: more text, a smaller model or a "
            "shorter run would do better")


def finished_line(session: TrainingSession, extra_key: str, extra_seconds: float) -> str:
    trainer = session.trainer
    spent = format_seconds(trainer.config.time_budget) if trainer.config.time_budget else f"{trainer.step:,} steps"
    return (f"{session.checkpoint} has finished its {spent} (best val loss {trainer.best_val_loss:.4f}); "
            f"{extra_key} trains it {extra_seconds / 60:g} minutes more")
