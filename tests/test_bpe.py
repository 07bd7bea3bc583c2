import io
import json
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minigpt.bpe import MAX_VOCAB_SIZE, BPETokenizer, Utf8Stream, merge_pair, split_text

ENGLISH = "".join(
    f"Chapter {i}. The quick brown fox jumps over the lazy dog; the dog, it's said, didn't mind.\n"
    f"  They'll say: \"{'ho ' * (i % 3)}hum\" -- and then, at {i * 7} o'clock, everyone went home.\n\n"
    for i in range(30)
)
MULTILINGUAL = "".join(
    f"{i}: Grüße aus München, ¿qué tal? Naïve café. 日本語のテキストです。 Привет, мир! 🙂🎉{'ü' * (i % 4)}\n"
    for i in range(40)
)
PYTHON_CODE = Path(textwrap.__file__).read_text(encoding="utf-8")[:4000]
CORPORA = {"english": ENGLISH, "multilingual": MULTILINGUAL, "python": PYTHON_CODE}
TOKENIZERS = {name: BPETokenizer.train(text, 350) for name, text in CORPORA.items()}

# Arbitrary Unicode text but lone surrogates (category Cs), which UTF-8 cannot hold,
# made likelier to hold accents, CJK, emoji and line ends, and mixed with pieces of
# the corpora so that the merged tokens are used too.
CHARACTERS = st.characters(exclude_categories=["Cs"]) | st.sampled_from("éøü漢字テ🙂👍🏽\n\r\t ")
CORPUS_PIECES = sorted({piece for text in CORPORA.values() for piece in split_text(text)})
TEXTS = st.lists(st.text(CHARACTERS, max_size=8) | st.sampled_from(CORPUS_PIECES), max_size=20).map("".join)


@pytest.mark.parametrize("name", CORPORA)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_decode_inverts_encode_for_any_text(name, text):
    tok = TOKENIZERS[name]
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.decode_bytes(ids) == text.encode("utf-8")
    assert tok.unknown_characters(text) == []


@pytest.mark.parametrize("name", CORPORA)
def test_training_learns_up_to_the_merges_asked_for_and_compresses(name):
    tok, text = TOKENIZERS[name], CORPORA[name]
    assert 300 < tok.vocab_size <= 350  # fewer when no pair is left that occurs twice
    assert len(tok.encode(text)) < 0.7 * len(text.encode("utf-8"))


@pytest.mark.parametrize("name", CORPORA)
def test_encode_array_equals_encode(name):
    tok = TOKENIZERS[name]
    for text in (CORPORA[name], "", "unseen: 🦜 ∑ 漢字\n\n  x"):
        array = tok.encode_array(text)
        assert array.dtype == np.int64
        assert array.tolist() == tok.encode(text)


@pytest.mark.parametrize("name", CORPORA)
def test_training_leaves_its_chunks_encoded_as_encode_would(name):
    fresh = BPETokenizer.from_dict(TOKENIZERS[name].to_dict())
    assert fresh.encode(CORPORA[name]) == TOKENIZERS[name].encode(CORPORA[name])


def test_the_same_text_gives_the_same_merges():
    assert BPETokenizer.train(MULTILINGUAL, 400).to_dict() == BPETokenizer.train(MULTILINGUAL, 400).to_dict()


def test_the_merges_do_not_depend_on_the_hash_seed():
    """Python salts str hashes per process, which reorders sets and dicts; the
    merges must not change with it."""
    script = ("import json, sys; from minigpt.bpe import BPETokenizer; "
              "print(json.dumps(BPETokenizer.train(sys.stdin.read(), 400).to_dict()))")
    runs = [subprocess.run([sys.executable, "-c", script], input=ENGLISH + MULTILINGUAL, capture_output=True,
                           text=True, check=True, cwd=Path(__file__).parents[1],
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")]
    assert json.loads(runs[0]) == json.loads(runs[1])


def recounting_train(text: str, vocab_size: int) -> list[tuple[int, int]]:
    """BPE training the slow, obvious way: count every pair again before each merge."""
    words = [list(chunk.encode("utf-8")) for chunk in split_text(text)]
    merges = []
    while len(merges) < vocab_size - 256:
        counts = Counter(pair for word in words for pair in pairwise(word))
        best = min(counts, key=lambda pair: (-counts[pair], pair), default=None)
        if best is None or counts[best] < 2:
            break
        words = [merge_pair(word, best, 256 + len(merges)) for word in words]
        merges.append(best)
    return merges


@pytest.mark.parametrize("name", CORPORA)
def test_incremental_counting_agrees_with_counting_again(name):
    assert TOKENIZERS[name].merges == recounting_train(CORPORA[name], 350)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_incremental_counting_agrees_with_counting_again_on_any_text(text):
    assert BPETokenizer.train(text, 320).merges == recounting_train(text, 320)


def test_first_merges_of_a_tiny_text_worked_by_hand():
    # The chunks are "aaab" and " aaab". Counts: (a, a) 4, (a, b) 2, (" ", a) 1, so
    # "aa" becomes 256. Then (256, a) and (a, b) both occur twice: the tie goes to the
    # smaller pair, (97, 98) before (256, 97), so "ab" becomes 257. Then (256, 257)
    # occurs twice: "aaab" is 258. (" ", 256) occurs once only, so training stops.
    tok = BPETokenizer.train("aaab aaab", 300)
    assert tok.merges == [(97, 97), (97, 98), (256, 257)]
    assert tok.vocab_size == 259
    assert tok.encode("aaab aaab") == [258, 32, 258]
    assert tok.token_bytes(258) == b"aaab"


def test_a_tie_goes_to_the_smaller_pair_not_the_first_seen():
    # (c, d) and (a, b) both occur twice; "cd" comes first in the text, but (97, 98) < (99, 100).
    tok = BPETokenizer.train("cdcd abab", 300)
    assert tok.merges == [(97, 98), (99, 100)]


def test_no_token_crosses_a_word_boundary():
    for tok in TOKENIZERS.values():
        for token_id in range(tok.vocab_size):
            text = tok.token_bytes(token_id).decode("utf-8", errors="replace")
            assert not re.search(r"\S\s", text), f"token {token_id} {text!r} spans two chunks"


def test_split_text_gives_back_the_whole_text():
    text = "Hello,  world!  It's 2024_09 —\tfine.\n\n  ok"
    assert "".join(split_text(text)) == text
    assert split_text("It's 42 apples") == ["It", "'s", " 42", " apples"]


def test_progress_reports_merges_done_of_merges_wanted():
    calls = []
    tok = BPETokenizer.train(ENGLISH, 300, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(tok.merges), 44)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_text_without_repeated_pairs_gives_only_the_bytes():
    for text in ("", "a", "abcdef"):
        tok = BPETokenizer.train(text, 1000)
        assert tok.vocab_size == 256
        assert tok.decode(tok.encode("anything ✓")) == "anything ✓"


@pytest.mark.parametrize("vocab_size", [-1, 0, 255, MAX_VOCAB_SIZE + 1])
def test_vocab_size_out_of_range_is_refused(vocab_size):
    with pytest.raises(ValueError, match=rf"{vocab_size}.*256.*32,768"):
        BPETokenizer.train(ENGLISH, vocab_size)


@pytest.mark.parametrize("vocab_size", [256, MAX_VOCAB_SIZE])
def test_vocab_size_at_the_limits_is_accepted(vocab_size):
    assert BPETokenizer.train("abab", vocab_size).vocab_size <= vocab_size


def test_serialises_through_a_plain_dict_that_loads_weights_only():
    tok = TOKENIZERS["multilingual"]
    buffer = io.BytesIO()
    torch.save(tok.to_dict(), buffer)
    buffer.seek(0)
    again = BPETokenizer.from_dict(torch.load(buffer, weights_only=True))
    assert again.merges == tok.merges
    assert again.encode(MULTILINGUAL) == tok.encode(MULTILINGUAL)


@pytest.mark.parametrize("data, problem", [
    ({"kind": "char", "characters": "abc"}, "not a BPE tokenizer"),
    (["bpe"], "not a BPE tokenizer"),
    ({"kind": "bpe"}, "no 'merges'"),
    ({"kind": "bpe", "merges": "ab"}, "list of"),
    ({"kind": "bpe", "merges": [[97, 98, 99]]}, "not a pair"),
    ({"kind": "bpe", "merges": [[97, "b"]]}, "not a pair"),
    ({"kind": "bpe", "merges": [[True, 98]]}, "not a pair"),
    ({"kind": "bpe", "merges": [[97, 256]]}, "cannot use"),
    ({"kind": "bpe", "merges": [[97, 98], [256, 257]]}, "cannot use"),
    ({"kind": "bpe", "merges": [[-1, 98]]}, "cannot use"),
    ({"kind": "bpe", "merges": [[97, 98], [97, 98]]}, "repeats merge 0"),
    ({"kind": "bpe", "merges": [[97, 98]] * MAX_VOCAB_SIZE}, "more than"),
])
def test_from_dict_refuses_malformed_data(data, problem):
    with pytest.raises(ValueError, match=problem):
        BPETokenizer.from_dict(data)


def test_invalid_utf8_decodes_to_replacement_characters():
    tok = BPETokenizer([])
    assert tok.decode([0xFF]) == "\ufffd"
    assert tok.decode(list("🙂".encode())[:2]) == "\ufffd"
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([256])


def test_a_lone_surrogate_encodes_and_decodes_as_replacement_characters():
    tok = TOKENIZERS["english"]
    decoded = tok.decode(tok.encode("a\ud800b"))
    assert decoded[0] == "a" and decoded[-1] == "b" and set(decoded[1:-1]) == {"\ufffd"}


@pytest.mark.parametrize("character", ["🙂", "漢", "é"])
def test_stream_holds_back_a_character_until_its_last_byte(character):
    stream = Utf8Stream()
    data = character.encode("utf-8")
    pieces = [stream.feed(data[i:i + 1]) for i in range(len(data))]
    assert pieces == [""] * (len(data) - 1) + [character]
    assert stream.flush() == ""


@settings(max_examples=100, deadline=None)
@given(text=TEXTS)
def test_stream_of_tokens_never_gives_half_a_character(text):
    assume("\ufffd" not in text)
    tok = TOKENIZERS["multilingual"]
    stream = Utf8Stream()
    pieces = [stream.feed(tok.token_bytes(token_id)) for token_id in tok.encode(text)]
    assert all("\ufffd" not in piece for piece in pieces)
    assert "".join(pieces) + stream.flush() == text


def test_stream_replaces_invalid_bytes():
    stream = Utf8Stream()
    assert stream.feed(b"\xff") == "\ufffd"
    assert stream.feed(b"a\x80b") == "a\ufffdb"
    assert stream.feed(b"\xe6") == ""
    assert stream.feed(b"x") == "\ufffdx"  # a character cut short by one that is not its continuation


def test_stream_flush_gives_a_held_fragment_as_a_replacement_character():
    stream = Utf8Stream()
    assert stream.feed("漢".encode()[:2]) == ""
    assert stream.flush() == "\ufffd"
    assert stream.feed(b"ok") == "ok"
