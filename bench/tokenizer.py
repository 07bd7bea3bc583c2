"""`python -m bench tokenizer`: how fast the byte-level BPE learns and encodes.

Three figures, each timed once on a quiet machine:
- learning a 1,024-token vocabulary from --data (Tiny Shakespeare: 1.1 MB);
- learning a 4,096-token vocabulary from a 10 MB text made from --data's words:
  the words in a seeded random order, a fifth of them with one letter changed,
  so that the big text has many more distinct words than --data, as a real
  10 MB text would (repeating --data would leave the distinct words, and so
  the work, as they are);
- encoding --data with the 1,024-token tokenizer, as learned (learning leaves
  every word of the text in the encoder's cache) and loaded from a checkpoint
  (an empty cache: each distinct word is merged once, then looked up).
"""

from __future__ import annotations

import argparse
import random
import string
import time
from pathlib import Path

from minigpt.bpe import BPETokenizer, split_text
from minigpt.plumbing.corpus import choose_corpus

SMALL_VOCAB = 1024
BIG_VOCAB = 4096


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="the text (default: data/input.txt, else the built-in corpus)")
    parser.add_argument("--big-mb", type=float, default=10.0, help="size of the big text, in MB")


def run(args: argparse.Namespace) -> None:
    text = "".join(choose_corpus(args.data).chunks())
    megabytes = len(text.encode()) / 1e6

    started = time.perf_counter()
    tokenizer = BPETokenizer.train(text, SMALL_VOCAB)
    print(f"learn {SMALL_VOCAB:,} tokens from {args.data or 'the default corpus'} ({megabytes:.2f} MB): "
          f"{time.perf_counter() - started:.2f} s")

    for state, encoder in (("as learned (its cache holds the text's words)", tokenizer),
                           ("loaded from a checkpoint (an empty cache)", BPETokenizer.from_dict(tokenizer.to_dict()))):
        started = time.perf_counter()
        ids = encoder.encode_array(text)
        seconds = time.perf_counter() - started
        print(f"encode it with them, {state}: {megabytes / seconds:.1f} MB/s "
              f"({len(text) / len(ids):.2f} characters per token)")

    big = varied_text(text, int(args.big_mb * 1e6))
    started = time.perf_counter()
    BPETokenizer.train(big, BIG_VOCAB)
    print(f"learn {BIG_VOCAB:,} tokens from a {len(big.encode()) / 1e6:.1f} MB text of its words "
          f"({len(set(split_text(big))):,} distinct chunks): {time.perf_counter() - started:.2f} s")


def varied_text(text: str, size: int) -> str:
    """About size bytes of text's words in a seeded random order, one in five with a letter changed."""
    rng = random.Random(0)
    words = text.split()
    pieces, length = [], 0
    while length < size:
        line = []
        for word in rng.choices(words, k=12):
            if rng.random() < 0.2:
                at = rng.randrange(len(word))
                word = word[:at] + rng.choice(string.ascii_lowercase) + word[at + 1:]
            line.append(word)
        pieces.append(" ".join(line) + "\n")
        length += len(pieces[-1])
    return "".join(pieces)
