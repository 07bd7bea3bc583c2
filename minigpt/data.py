"""Token streams for training: a train/validation split and random batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minigpt.corpus import CorpusError
from minigpt.tokenizer import CharTokenizer


@dataclass
class Splits:
    train: torch.Tensor  # 1-D token ids
    val: torch.Tensor
    chars_per_token: float  # to report losses in bits per character


def split_corpus(text: str, tokenizer: CharTokenizer, val_fraction: float, block_size: int,
                 name: str = "corpus") -> Splits:
    """Encode text and hold out its last val_fraction for validation.

    Each split must hold at least one block plus the token after it; otherwise
    the error says how long the corpus must be."""
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.int32)
    n_val = int(len(ids) * val_fraction)
    splits = Splits(train=ids[: len(ids) - n_val], val=ids[len(ids) - n_val:],
                    chars_per_token=len(text) / max(len(ids), 1))
    needed = block_size + 1
    if min(len(splits.train), len(splits.val)) < needed:
        minimum = max(needed / val_fraction, needed / (1 - val_fraction))
        raise CorpusError(
            f"{name}: {len(text):,} characters is too short for block_size {block_size} with "
            f"val_fraction {val_fraction:g}; it needs at least {int(minimum) + 1:,} characters"
        )
    return splits


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
