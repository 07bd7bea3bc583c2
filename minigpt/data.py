"""Token streams for training: a train/validation split and random batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minigpt.corpus import Corpus, CorpusError
from minigpt.tokenizer import CharTokenizer


@dataclass
class Splits:
    train: torch.Tensor  # 1-D token ids
    val: torch.Tensor
    chars_per_token: float  # to report losses in bits per character


def split_corpus(corpus: Corpus, tokenizer: CharTokenizer, val_fraction: float, block_size: int) -> Splits:
    """Encode a corpus and hold out its last val_fraction for validation.

    Each split must hold at least one block plus the token after it; otherwise
    the error says how long the corpus must be."""
    n_val = int(corpus.length * val_fraction)
    needed = block_size + 1
    if min(corpus.length - n_val, n_val) < needed:
        minimum = max(needed / val_fraction, needed / (1 - val_fraction))
        raise CorpusError(
            f"{corpus.name}: {corpus.length:,} characters is too short for block_size {block_size} with "
            f"val_fraction {val_fraction:g}; it needs at least {int(minimum) + 1:,} characters, "
            "so use a longer text or a smaller block_size"
        )
    ids = encode_corpus(corpus, tokenizer)
    return Splits(train=ids[: len(ids) - n_val], val=ids[len(ids) - n_val:],
                  chars_per_token=corpus.length / len(ids))


def token_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer type that holds every token id: one byte per
    token for up to 256 characters, which is what a large corpus costs in memory."""
    if vocab_size <= 256:
        return torch.uint8
    return torch.int16 if vocab_size <= 2**15 else torch.int32


def encode_corpus(corpus: Corpus, tokenizer: CharTokenizer) -> torch.Tensor:
    """All the corpus's token ids in one compact tensor, encoded chunk by chunk
    so that the text is never held whole."""
    ids = torch.empty(corpus.length, dtype=token_dtype(tokenizer.vocab_size))
    filled = 0
    for chunk in corpus.chunks():
        chunk_ids = torch.from_numpy(tokenizer.encode_array(chunk))[: corpus.length - filled]
        ids[filled:filled + len(chunk_ids)] = chunk_ids
        filled += len(chunk_ids)
    if filled < corpus.length:
        raise CorpusError(f"{corpus.name}: the file got shorter while it was being read; try again")
    return ids


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
