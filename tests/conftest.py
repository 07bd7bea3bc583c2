from __future__ import annotations

import os
import tempfile

import pytest

from minigpt.plumbing import config as cfg
from minigpt.plumbing.corpus import Corpus

SHAKESPEARE_LIKE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 40

# The tests time models and write MiniGPT's cache (speeds.json); they keep it apart from
# the user's ~/.cache, where a timing from another version or a busy moment would steer them.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="minigpt-test-cache-")


@pytest.fixture
def corpus_text() -> str:
    return SHAKESPEARE_LIKE


@pytest.fixture
def corpus() -> Corpus:
    return Corpus.from_text(SHAKESPEARE_LIKE, "shakespeare-like")


@pytest.fixture
def tiny_config() -> cfg.TrainConfig:
    """A model that trains in well under a second, in float32 so runs are bit-for-bit repeatable."""
    return cfg.resolve("tiny", flags={"dtype": "float32", "device": "cpu", "max_iters": 20, "eval_interval": 10,
                                      "eval_iters": 2})
