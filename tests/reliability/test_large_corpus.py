"""A large corpus is streamed and encoded chunk by chunk into one byte per
character: memory grows with the token tensor, not with Python strings and lists."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_helpers import command_env, train

SIZE = 40 * 2**20  # 40 MiB: big enough that a whole-file str plus an int list would cost ~0.5 GB

MEASURE = """
import json, resource, sys, time
import torch
from minigpt.plumbing.corpus import open_corpus
from minigpt.data import split_corpus
from minigpt.tokenizer import CharTokenizer

scale = 1 if sys.platform != "darwin" else 1024  # ru_maxrss is KiB on Linux, bytes on macOS
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
started = time.perf_counter()
corpus = open_corpus(sys.argv[1])
tokenizer = CharTokenizer(corpus.characters)
splits = split_corpus(corpus, tokenizer, val_fraction=0.1, block_size=256)
seconds = time.perf_counter() - started
extra_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale - before
print(json.dumps({"extra_kib": extra_kib, "seconds": seconds, "length": corpus.length,
                  "tokens": len(splits.train) + len(splits.val), "dtype": str(splits.train.dtype),
                  "head": tokenizer.decode(splits.train[:200].tolist()),
                  "tail": tokenizer.decode(splits.val[-200:].tolist())}))
"""


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    rng = random.Random(0)
    words = ["the", "king", "and", "queen", "of", "hearts", "wrote", "déjà", "vu", "naïve", "λόγος", "\n"]
    block = " ".join(rng.choices(words, k=200_000)).encode()
    path = tmp_path_factory.mktemp("big") / "big.txt"
    with path.open("wb") as f:
        while f.tell() < SIZE:
            f.write(block)
    return path


def test_large_corpus_needs_about_one_byte_per_character(big_file):
    result = subprocess.run([sys.executable, "-c", MEASURE, str(big_file)], capture_output=True, text=True,
                            env=command_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    text = big_file.read_text(encoding="utf-8")
    assert report["tokens"] == report["length"] == len(text)
    assert report["dtype"] == "torch.uint8"
    assert report["head"] == text[:200] and report["tail"] == text[-200:]
    # The tokens take one byte per character; allow 64 MiB for read buffers and allocator slack.
    # Holding the text as a str and encoding through a list of ints would need over 10 bytes a character.
    extra = report["extra_kib"] * 1024
    assert extra < len(text) + 64 * 2**20, f"{extra / 2**20:.0f} MiB for {len(text) / 2**20:.0f}M characters"


def test_training_on_a_large_corpus_from_the_command_line(big_file, tmp_path):
    result = train(["--preset", "tiny", "--data", big_file, "--max-iters", "2", "--set", "eval_iters=1",
                    "--no-sample"], tmp_path)
    assert result.returncode == 0, result.stderr
    characters = len(big_file.read_text(encoding="utf-8"))
    assert f"({characters:,} characters" in result.stderr
