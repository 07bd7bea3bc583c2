"""Token streams for training: the tokenizer, a train/validation split and random batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NoReturn

import torch

from minigpt.bpe import BPETokenizer
from minigpt.plumbing.corpus import Corpus, CorpusError
from minigpt.tokenizer import CharTokenizer, Tokenizer


@dataclass
class Splits:
    train: torch.Tensor  # 1-D token ids
    val: torch.Tensor
    train_chars_per_token: float  # to report losses in bits per character of each split's text
    val_chars_per_token: float


def make_tokenizer(kind: str, corpus: Corpus, val_fraction: float, vocab_size: int,
                   progress: Callable[[int, int], None] | None = None) -> Tokenizer:
    """The tokenizer of a new run. A character tokenizer has a token for every
    character of the corpus; BPE learns its merges from the training split only,
    so the validation text stays unseen."""
    if kind == "bpe":
        train_text = "".join(text for text, is_val in _split_chunks(corpus, val_fraction) if not is_val)
        return BPETokenizer.train(train_text, vocab_size, progress)
    return CharTokenizer(corpus.characters)


def split_corpus(corpus: Corpus, tokenizer: Tokenizer, val_fraction: float, block_size: int) -> Splits:
    """Encode a corpus and hold out its last val_fraction (of characters) for validation.

    Each split must hold at least one block plus the token after it; otherwise
    the error says how long the corpus must be."""
    needed = block_size + 1
    n_val = int(corpus.length * val_fraction)
    if min(corpus.length - n_val, n_val) < needed:  # a token holds at least one character
        _too_short(corpus, block_size, val_fraction)
    pieces: dict[bool, list[torch.Tensor]] = {False: [], True: []}
    dtype = token_dtype(tokenizer.vocab_size)
    for text, is_val in _split_chunks(corpus, val_fraction):
        pieces[is_val].append(torch.from_numpy(tokenizer.encode_array(text)).to(dtype))
    train, val = torch.cat(pieces[False]), torch.cat(pieces[True])
    if min(len(train), len(val)) < needed:
        _too_short(corpus, block_size, val_fraction, tokens=True)
    return Splits(train, val, train_chars_per_token=(corpus.length - n_val) / len(train),
                  val_chars_per_token=n_val / len(val))


def _split_chunks(corpus: Corpus, val_fraction: float) -> Iterator[tuple[str, bool]]:
    """(text, is_val) pieces of the corpus in order, cut where validation begins."""
    n_train = corpus.length - int(corpus.length * val_fraction)
    seen = 0
    for chunk in corpus.chunks():
        cut = min(max(n_train - seen, 0), len(chunk))
        if cut:
            yield chunk[:cut], False
        if cut < len(chunk):
            yield chunk[cut:], True
        seen += len(chunk)
    if seen != corpus.length:
        raise CorpusError(f"{corpus.name}: the file changed while it was being read; try again")


def _too_short(corpus: Corpus, block_size: int, val_fraction: float, tokens: bool = False) -> NoReturn:
    needed = block_size + 1
    minimum = max(needed / val_fraction, needed / (1 - val_fraction))
    unit = "tokens" if tokens else "characters"
    raise CorpusError(
        f"{corpus.name}: {corpus.length:,} characters is too short for block_size {block_size} with "
        f"val_fraction {val_fraction:g}; it needs at least {int(minimum) + 1:,} {unit}, "
        "so use a longer text or a smaller block_size"
    )


def token_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer type that holds every token id: one byte per
    token for up to 256 characters, which is what a large corpus costs in memory."""
    if vocab_size <= 256:
        return torch.uint8
    return torch.int16 if vocab_size <= 2**15 else torch.int32


class BatchSampler:
    """Random contiguous windows from one split, drawn with a private seeded
    generator whose state is saved in checkpoints, so a resumed run draws the
    batches an unbroken run would have drawn next."""

    def __init__(self, data: torch.Tensor, batch_size: int, block_size: int, seed: int) -> None:
        self.data = data
        self.batch_size = batch_size
        self.offsets = torch.arange(block_size + 1)
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, T) and targets (B, T): the same windows shifted by one token."""
        high = len(self.data) - len(self.offsets) + 1
        starts = torch.randint(high, (self.batch_size, 1), generator=self.generator)
        windows = self.data[starts + self.offsets].long()
        return windows[:, :-1], windows[:, 1:]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
