"""Byte-level BPE tokenizer: frequent byte sequences of the corpus become tokens.

Byte-pair encoding starts from the smallest possible vocabulary and grows it. Here
the text is UTF-8 bytes and the first 256 tokens are the 256 byte values. Training
then repeats one step: find the pair of adjacent tokens that occurs most often in
the corpus, and make it a new token (merge i creates token 256 + i). After a few
hundred merges, common words and word pieces ("the", " and", "ing") are one token
each, so the model sees more text in the same number of tokens.

Why bytes and not characters: every string is a sequence of bytes, so every string
can be encoded. A character the corpus never had (an emoji, a CJK character) is
simply its 1 to 4 bytes; there is no unknown character. The price is that a token
can hold part of a character, so decoding a single token may not give valid text;
`decode` replaces the incomplete bytes with U+FFFD and `Utf8Stream` holds them back
until the rest of the character arrives.

Why pre-split: before counting, the text is cut into chunks by SPLIT_PATTERN
(words with their leading space, numbers, punctuation, whitespace), as GPT-2 does,
and pairs are only counted inside a chunk. So no token spans two words ("e t" from
"the tree"), and the merges are spent on reusable pieces of words instead.

How training stays fast: a corpus has millions of chunks but far fewer distinct
ones, so each distinct chunk is kept once with its frequency. The count of each
pair, and the set of chunks it occurs in, are built once and then updated for only
the chunks that a merge changes; nothing passes over the whole corpus again. The
most frequent pair comes from a heap. Counts only ever fall, except for pairs that
hold the new token, which are pushed once the merge is done; so a heap entry whose
count is out of date is simply pushed again with its current count when it comes
to the top ("lazy deletion").

Ties: when two pairs occur equally often, the smaller pair as a tuple of token ids,
(a, b) < (c, d), is merged first. With that rule the same text and vocabulary size
always give the same merges.
"""

from __future__ import annotations

import codecs
import heapq
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from itertools import chain, pairwise, repeat

import numpy as np

BYTE_TOKENS = 256  # tokens 0-255 are the byte values themselves
MIN_VOCAB_SIZE = BYTE_TOKENS
MAX_VOCAB_SIZE = 32_768
PROGRESS_SECONDS = 0.1  # how often train() reports progress

# GPT-2's pre-split pattern in Python's `re`, which has no \p{L} or \p{N}: a letter
# is a word character that is neither a digit nor "_" ([^\W\d_]), a number is \d,
# and punctuation is anything else that is not whitespace, "_" included. The
# alternatives: English contractions; a run of letters, of digits or of punctuation,
# each with at most one leading space; a run of whitespace, which stops one character
# short of the text that follows it so that a single space can go with the next word.
SPLIT_PATTERN = re.compile(r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")

Pair = tuple[int, int]


def split_text(text: str) -> list[str]:
    """The chunks of text that merges never cross; joined, they are text again."""
    return SPLIT_PATTERN.findall(text)


def to_bytes(text: str) -> bytes:
    # "surrogatepass" lets a lone surrogate (not valid Unicode) encode instead of
    # raising; its bytes decode to U+FFFD.
    return text.encode("utf-8", "surrogatepass")


def merge_pair(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """ids with each occurrence of pair, from left to right, replaced by new_id."""
    a, b = pair
    merged = []
    i = 0
    while i < len(ids):
        if ids[i] == a and i + 1 < len(ids) and ids[i + 1] == b:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def check_vocab_size(vocab_size: int) -> None:
    if not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise ValueError(f"BPE vocab_size {vocab_size} is out of range: it must be from "
                         f"{MIN_VOCAB_SIZE} (the bytes alone) to {MAX_VOCAB_SIZE:,}")


def check_merges(merges: object) -> list[Pair]:
    """merges as a list of pairs, once each is known to name only tokens that exist
    before it (merge i may use tokens 0 to 255 + i) and none repeats another."""
    if not isinstance(merges, list | tuple):
        raise ValueError(f"BPE merges must be a list of [a, b] pairs, not {type(merges).__name__}")
    if len(merges) > MAX_VOCAB_SIZE - BYTE_TOKENS:
        raise ValueError(f"{len(merges):,} BPE merges make more than {MAX_VOCAB_SIZE:,} tokens")
    first_seen: dict[Pair, int] = {}
    for i, merge in enumerate(merges):
        if not (isinstance(merge, list | tuple) and len(merge) == 2
                and all(isinstance(t, int) and not isinstance(t, bool) for t in merge)):
            raise ValueError(f"BPE merge {i} is not a pair of token ids: {merge!r:.60}")
        pair = (merge[0], merge[1])
        if not all(0 <= t < BYTE_TOKENS + i for t in pair):
            raise ValueError(f"BPE merge {i} {list(pair)} names a token it cannot use: "
                             f"merge {i} may only use the tokens before it, 0 to {BYTE_TOKENS + i - 1}")
        if pair in first_seen:
            raise ValueError(f"BPE merge {i} {list(pair)} repeats merge {first_seen[pair]}")
        first_seen[pair] = i
    return list(first_seen)  # the pairs, in merge order


class PairCounts:
    """How often each pair of adjacent tokens occurs in a corpus, kept up to date
    merge by merge. The corpus is held as its distinct chunks and their counts."""

    def __init__(self, chunks: dict[bytes, int]) -> None:
        self.chunks = [list(chunk) for chunk in chunks]  # each distinct chunk's tokens so far
        self.freqs = list(chunks.values())
        self.counts: dict[Pair, int] = defaultdict(int)
        self.where: dict[Pair, set[int]] = defaultdict(set)  # pair -> indices of the chunks that hold it
        for i, chunk in enumerate(self.chunks):
            for pair in pairwise(chunk):
                self.counts[pair] += self.freqs[i]
                self.where[pair].add(i)
        # Entries are (-count, pair): the heap's smallest is the most frequent pair,
        # and among equal counts the smallest pair.
        self.heap = [(-count, pair) for pair, count in self.counts.items()]
        heapq.heapify(self.heap)

    def most_frequent(self) -> tuple[Pair, int] | None:
        """The pair that occurs most often and its count; None when no pairs are left."""
        while self.heap:
            stale_count, pair = self.heap[0]
            count = self.counts.get(pair, 0)
            if -stale_count == count:
                return pair, count
            if count:  # out of date: put it back with its count now
                heapq.heapreplace(self.heap, (-count, pair))
            else:
                heapq.heappop(self.heap)
        return None

    def merge(self, pair: Pair, new_id: int) -> None:
        """Replace pair by new_id in every chunk that holds it, updating the counts of
        those chunks' pairs only."""
        gone, born = set(), set()
        for i in list(self.where[pair]):
            old = self.chunks[i]
            new = self.chunks[i] = merge_pair(old, pair, new_id)
            old_pairs, new_pairs = list(pairwise(old)), list(pairwise(new))
            for p in old_pairs:
                self.counts[p] -= self.freqs[i]
            for p in new_pairs:
                self.counts[p] += self.freqs[i]
            for p in set(old_pairs).difference(new_pairs):
                self.where[p].discard(i)
                gone.add(p)
            for p in set(new_pairs).difference(old_pairs):
                self.where[p].add(i)
                born.add(p)
        for p in gone:
            if not self.counts[p]:
                del self.counts[p], self.where[p]
        for p in born:  # each holds new_id, so it has no heap entry yet
            heapq.heappush(self.heap, (-self.counts[p], p))


class BPETokenizer:
    """Byte-level BPE: tokens 0-255 are bytes, token 256 + i is merges[i] joined."""

    kind = "bpe"

    def __init__(self, merges: list[Pair]) -> None:
        self.merges = check_merges(merges)
        self._id_of_pair = {pair: BYTE_TOKENS + i for i, pair in enumerate(self.merges)}
        self._bytes = [bytes([b]) for b in range(BYTE_TOKENS)]
        for a, b in self.merges:
            self._bytes.append(self._bytes[a] + self._bytes[b])
        self._chunk_cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int,
              progress: Callable[[int, int], None] | None = None) -> BPETokenizer:
        """Learn vocab_size - 256 merges from text (the module docstring says how).
        Each merge takes the most frequent pair; a tie goes to the smaller pair as a
        tuple of ids, so the same text and vocab_size always give the same merges.
        Training stops early, with a smaller vocabulary, once no pair occurs twice (a
        pair seen once is not worth a token), or at once for an empty text.

        progress(merges done, merges wanted) is called about every 0.1 s and once at
        the end."""
        check_vocab_size(vocab_size)
        chunks = Counter(split_text(text))
        pairs = PairCounts({to_bytes(chunk): n for chunk, n in chunks.items()})
        wanted = vocab_size - BYTE_TOKENS
        merges: list[Pair] = []
        reported = time.monotonic()
        while len(merges) < wanted:
            best = pairs.most_frequent()
            if best is None or best[1] < 2:
                break
            pairs.merge(best[0], BYTE_TOKENS + len(merges))
            merges.append(best[0])
            if progress and time.monotonic() - reported >= PROGRESS_SECONDS:
                progress(len(merges), wanted)
                reported = time.monotonic()
        if progress:
            progress(len(merges), wanted)
        tokenizer = cls(merges)
        # The training chunks are encoded already: applying the merges in the order
        # they were learned, as encode does, gives what training left of each chunk.
        tokenizer._chunk_cache.update(zip(chunks, pairs.chunks, strict=True))
        return tokenizer

    @property
    def vocab_size(self) -> int:
        return BYTE_TOKENS + len(self.merges)

    def unknown_characters(self, text: str) -> list[str]:
        """Always empty: a character without a token of its own is encoded as its bytes."""
        return []

    def encode(self, text: str) -> list[int]:
        chunks = split_text(text)
        for chunk in set(chunks).difference(self._chunk_cache):  # a text repeats its chunks many times:
            self._chunk_cache[chunk] = self._apply_merges(list(to_bytes(chunk)))  # each is worked out once
        return list(chain.from_iterable(map(self._chunk_cache.__getitem__, chunks)))

    def encode_array(self, text: str) -> np.ndarray:
        return np.array(self.encode(text), dtype=np.int64)

    def _apply_merges(self, ids: list[int]) -> list[int]:
        # Merge in the order training learned the merges: each round, the adjacent
        # pair that was merged earliest (lowest new id), until no pair is a merge.
        unmerged = repeat(self.vocab_size)
        while len(ids) > 1:
            new_id = min(map(self._id_of_pair.get, pairwise(ids), unmerged))  # a pair's id, or vocab_size
            if new_id == self.vocab_size:
                break
            ids = merge_pair(ids, self.merges[new_id - BYTE_TOKENS], new_id)
        return ids

    def token_bytes(self, token_id: int) -> bytes:
        if not 0 <= token_id < self.vocab_size:
            raise ValueError(f"token id {token_id} is out of range: the vocabulary has {self.vocab_size} tokens")
        return self._bytes[token_id]

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        return b"".join(map(self.token_bytes, ids))

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ids; bytes that are not valid UTF-8 (part of a character, say)
        become U+FFFD instead of raising."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "merges": [[a, b] for a, b in self.merges]}

    @classmethod
    def from_dict(cls, data: dict) -> BPETokenizer:
        if not isinstance(data, dict) or data.get("kind") != cls.kind:
            kind = data.get("kind") if isinstance(data, dict) else data
            raise ValueError(f"not a BPE tokenizer: {kind!r:.60}")
        if "merges" not in data:
            raise ValueError("BPE tokenizer data has no 'merges'")
        return cls(data["merges"])


class Utf8Stream:
    """Turns bytes that arrive in pieces (the tokens of a generation, one by one)
    into text, without ever splitting a character: the bytes of an incomplete
    character at the end of a piece are held until the rest arrives."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        """The complete characters that data finishes; invalid bytes become U+FFFD."""
        return self._decoder.decode(data)

    def flush(self) -> str:
        """Whatever is held back, as U+FFFD since it is an incomplete character; the
        stream is then empty and can be fed again."""
        return self._decoder.decode(b"", final=True)
