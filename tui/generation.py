"""Streaming one completion from a thread worker.

The model is a snapshot of the trainer's weights taken between two
optimizer steps, so training can go on while it samples, and
minigpt.sampling draws from a private generator, so sampling never moves
the trainer's random state. Text goes to the UI in batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message import Message
from textual.worker import Worker

from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate
from minigpt.trainer import Trainer
from tui.messages import CompletionEnded, CompletionText

FLUSH_INTERVAL = 0.04  # seconds: about 25 screen updates a second at most
FLUSH_TOKENS = 64  # or sooner, when this many tokens are waiting


def stream_completion(trainer: Trainer, prompt: str, settings: SamplingSettings, tag: int,
                      post: Callable[[Message], object], worker: Worker) -> None:
    """Sample a completion of prompt, posting CompletionText batches and a
    final CompletionEnded, until done or the worker is cancelled."""
    started = time.monotonic()
    pieces = generate(trainer.snapshot(), trainer.tokenizer, prompt, settings)
    pending: list[str] = []
    tokens, last_flush = 0, time.monotonic()
    try:
        for piece in pieces:
            if worker.is_cancelled:
                return  # the app has already moved on; nothing more is posted
            tokens += 1
            pending.append(piece.text)
            if len(pending) >= FLUSH_TOKENS or time.monotonic() - last_flush >= FLUSH_INTERVAL:
                post(CompletionText(tag, "".join(pending)))
                pending, last_flush = [], time.monotonic()
    finally:
        pieces.close()
    if pending:
        post(CompletionText(tag, "".join(pending)))
    post(CompletionEnded(tag, tokens, time.monotonic() - started))
