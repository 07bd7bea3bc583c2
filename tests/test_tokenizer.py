import pytest

from minigpt.tokenizer import CharTokenizer, UnknownCharactersError


def test_round_trip_preserves_text():
    text = "Hello, wörld!\n\tTabs & ünïcödé 🙂"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab_size == len(set(text))


def test_vocabulary_is_sorted_and_stable():
    assert CharTokenizer.from_text("cabbage").characters == "abceg"


def test_unknown_characters_are_named_not_a_key_error():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(UnknownCharactersError) as info:
        tok.encode("abxcyx")
    assert info.value.characters == ["x", "y"]
    assert "'x'" in str(info.value) and "'y'" in str(info.value)
    assert not isinstance(info.value, KeyError)


def test_serialises_through_a_plain_dict():
    tok = CharTokenizer.from_text("hello world")
    again = CharTokenizer.from_dict(tok.to_dict())
    assert again.characters == tok.characters
    with pytest.raises(ValueError):
        CharTokenizer.from_dict({"kind": "bpe", "merges": []})
