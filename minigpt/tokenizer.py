"""Tokenizers: text to token ids and back.

Two kinds, behind one small interface (Tokenizer) that the trainer, the
sampler, the checkpoint and the app use:
- "char": every distinct character of the corpus is one token (here);
- "bpe": byte-level byte-pair encoding, frequent byte sequences become tokens
  (minigpt/bpe.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from minigpt.bpe import BPETokenizer
from minigpt.plumbing.errors import MiniGPTError


class Tokenizer(Protocol):
    kind: str  # "char" or "bpe"

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def encode_array(self, text: str) -> np.ndarray: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def token_bytes(self, token_id: int) -> bytes:
        """The UTF-8 bytes of one token: with bpe, possibly part of a character."""
        ...

    def unknown_characters(self, text: str) -> list[str]:
        """The characters of text the tokenizer cannot encode (never any, with bpe)."""
        ...

    def to_dict(self) -> dict:
        """Plain data (strings, numbers, lists) for the checkpoint."""
        ...


class UnknownCharactersError(MiniGPTError, ValueError):
    """Text holds characters that are not in the tokenizer's vocabulary."""

    def __init__(self, characters: list[str], hint: str = "") -> None:
        self.characters = characters
        shown = " ".join(repr(c) for c in characters[:20])
        more = f" and {len(characters) - 20} more" if len(characters) > 20 else ""
        super().__init__(f"characters not in the model's vocabulary: {shown}{more}" + (f"; {hint}" if hint else ""))


class CharTokenizer:
    kind = "char"

    def __init__(self, characters: str) -> None:
        if not characters:
            raise ValueError("a tokenizer needs at least one character")
        if len(set(characters)) != len(characters):
            raise ValueError("tokenizer characters must be distinct")
        self.characters = characters
        self._id_of = {c: i for i, c in enumerate(characters)}
        # For encode_array: the ids in order of their characters' code points.
        points = np.array([ord(c) for c in characters], dtype=np.uint32)
        self._ids_by_point = np.argsort(points)
        self._sorted_points = points[self._ids_by_point]

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer of a short string. Training builds it from Corpus.characters
        instead; this stays as the one-line way to try a tokenizer by hand."""
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.characters)

    def unknown_characters(self, text: str) -> list[str]:
        """The distinct characters of text that have no token, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._id_of))

    def encode(self, text: str) -> list[int]:
        try:
            return [self._id_of[c] for c in text]
        except KeyError:
            raise UnknownCharactersError(self.unknown_characters(text)) from None

    def encode_array(self, text: str) -> np.ndarray:
        """encode() in bulk, several times faster for long texts: each
        character's code point is found by binary search in the vocabulary's."""
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        where = np.searchsorted(self._sorted_points, points).clip(max=self.vocab_size - 1)
        if not np.array_equal(self._sorted_points[where], points):
            raise UnknownCharactersError(self.unknown_characters(text))
        return self._ids_by_point[where]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.characters[i] for i in ids)

    def token_bytes(self, token_id: int) -> bytes:
        return self.characters[token_id].encode("utf-8", "surrogatepass")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "characters": self.characters}

    @classmethod
    def from_dict(cls, data: dict) -> CharTokenizer:
        if data.get("kind") != cls.kind or not isinstance(data.get("characters"), str):
            raise ValueError(f"not a character tokenizer: {data.get('kind')!r}")
        return cls(data["characters"])


def tokenizer_from_dict(data: dict) -> Tokenizer:
    kinds = {CharTokenizer.kind: CharTokenizer, BPETokenizer.kind: BPETokenizer}
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in kinds:
        raise ValueError(f"unknown tokenizer kind {kind!r:.40}; expected char or bpe")
    return kinds[kind].from_dict(data)
