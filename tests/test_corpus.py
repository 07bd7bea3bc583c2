import pytest

from minigpt.data import BatchSampler, split_corpus
from minigpt.plumbing.corpus import BUILTIN_CHARS, Corpus, CorpusError, builtin_corpus, choose_corpus, open_corpus
from minigpt.tokenizer import CharTokenizer


def test_invalid_utf8_names_file_and_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"abc\xffdef")
    with pytest.raises(CorpusError, match=r"latin1.txt: not UTF-8 text \(invalid byte 0xff at offset 3\)"):
        open_corpus(path)


def test_empty_missing_directory_and_binary_files(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="empty.txt: the file is empty"):
        open_corpus(tmp_path / "empty.txt")
    with pytest.raises(CorpusError, match="nope.txt: no such file"):
        open_corpus(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="is a directory"):
        open_corpus(tmp_path)
    (tmp_path / "nul.bin").write_bytes(b"abc\x00def")
    with pytest.raises(CorpusError, match="NUL"):
        open_corpus(tmp_path / "nul.bin")


def test_too_short_corpus_says_how_long_it_must_be():
    text = "x" * 100
    with pytest.raises(CorpusError) as info:
        split_corpus(Corpus.from_text(text, "tiny.txt"), CharTokenizer.from_text(text), val_fraction=0.1, block_size=32)
    message = str(info.value)
    assert "tiny.txt" in message and "100 characters" in message and "at least 331 characters" in message
    long_enough = "x" * 331
    split_corpus(Corpus.from_text(long_enough), CharTokenizer.from_text(long_enough), val_fraction=0.1, block_size=32)


def test_split_holds_out_the_end():
    text = "abcdefghij" * 10
    splits = split_corpus(Corpus.from_text(text), CharTokenizer.from_text(text), val_fraction=0.2, block_size=4)
    assert len(splits.train) == 80 and len(splits.val) == 20


def test_batches_are_shifted_windows_and_reproducible():
    import torch

    data = torch.arange(100, dtype=torch.int32)
    x, y = BatchSampler(data, batch_size=5, block_size=8, seed=3).next_batch()
    assert x.shape == y.shape == (5, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y - x, torch.ones_like(x))
    x2, _ = BatchSampler(data, batch_size=5, block_size=8, seed=3).next_batch()
    assert torch.equal(x, x2)


def test_builtin_corpus_needs_no_download_and_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = choose_corpus(None)
    text, name = "".join(corpus.chunks()), corpus.name
    assert len(text) == corpus.length == BUILTIN_CHARS and text.isascii()
    assert "def " in text and name.startswith("built-in")
    assert builtin_corpus() == text


def test_default_path_wins_when_present(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "input.txt").write_text("my own words " * 50)
    corpus = choose_corpus(None)
    text, name = "".join(corpus.chunks()), corpus.name
    assert text.startswith("my own words") and name == "data/input.txt"


def test_download_offline_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    from minigpt.plumbing import corpus

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(CorpusError, match="could not download Tiny Shakespeare.*offline"):
        corpus.download_shakespeare(tmp_path / "input.txt")
    assert not (tmp_path / "input.txt").exists()


def test_download_with_wrong_checksum_is_refused(tmp_path, monkeypatch):
    import io
    import urllib.request

    from minigpt.plumbing import corpus

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"<html>captive portal</html>"))
    with pytest.raises(CorpusError, match="SHA-256"):
        corpus.download_shakespeare(tmp_path / "input.txt")
    assert not (tmp_path / "input.txt").exists()


def test_download_checks_and_writes_the_file(tmp_path, monkeypatch):
    import io
    import urllib.request
    from pathlib import Path

    from minigpt.plumbing import corpus

    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
    if not real.exists():
        pytest.skip("Tiny Shakespeare is not beside the repository")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(real.read_bytes()))
    path = corpus.download_shakespeare(tmp_path / "data" / "input.txt")
    assert path.read_bytes() == real.read_bytes()
