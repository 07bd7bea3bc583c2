"""Hostile corpora: each bad --data file ends minigpt-train with one clear line
naming the file and what to do, before anything is written."""

from __future__ import annotations

import py_compile
import sys
from pathlib import Path

import pytest
from reliability_helpers import TEXT, error_line, train

from minigpt.plumbing.corpus import CHUNK_BYTES, CorpusError, open_corpus


def png_bytes() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"\x00\xff\x00\x00" * 4)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def compiled_object(tmp_path: Path) -> bytes:
    source = tmp_path / "module.py"
    source.write_text("def f():\n    return 1\n")
    return Path(py_compile.compile(str(source), cfile=str(tmp_path / "module.pyc"))).read_bytes()


def executable_head() -> bytes:
    with open(sys.executable, "rb") as f:  # an ELF or Mach-O binary: the interpreter itself
        return f.read(4096)


MIDDLE = TEXT.encode()[:3000] + b"\xc3\x28" + TEXT.encode()[:3000]  # 0xc3 starts a character 0x28 cannot end

CASES = [  # file name, content (None: no file), words the error must hold
    ("missing.txt", None, ["missing.txt: no such file", "--data"]),
    ("empty.txt", b"", ["empty.txt: the file is empty", "choose another file"]),
    ("short.txt", b"To be, or not to be", ["short.txt: 19 characters is too short for block_size 32",
                                           "at least 331 characters", "smaller block_size"]),
    ("picture.png", png_bytes(), ["picture.png: not UTF-8 text (invalid byte 0x89 at offset 0)", "binary file"]),
    ("middle.txt", MIDDLE, ["middle.txt: not UTF-8 text (invalid byte 0xc3 at offset 3000)", "Convert it to UTF-8"]),
]


@pytest.mark.parametrize(("name", "content", "words"), CASES, ids=[case[0] for case in CASES])
def test_bad_corpus_is_one_clear_line(tmp_path, name, content, words):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    result = train(["--preset", "tiny", "--data", name], tmp_path)
    error_line(result, "minigpt-train", *words)
    assert not (tmp_path / "checkpoints").exists()  # nothing written


def test_compiled_objects_are_refused_as_binary(tmp_path):
    (tmp_path / "module.pyc.txt").write_bytes(compiled_object(tmp_path))
    (tmp_path / "python.bin").write_bytes(executable_head())
    for name in ("module.pyc.txt", "python.bin"):
        result = train(["--preset", "tiny", "--data", name], tmp_path)
        error_line(result, "minigpt-train", name, "binary file")


def test_a_directory_is_refused(tmp_path):
    (tmp_path / "corpus").mkdir()
    error_line(train(["--preset", "tiny", "--data", "corpus"], tmp_path),
               "minigpt-train", "corpus: is a directory", "--data")


# --- the streaming reader, at the library level -------------------------------------------------


def test_characters_split_between_two_reads_are_decoded_whole(tmp_path):
    # Two- and four-byte characters straddle the CHUNK_BYTES boundary at every offset.
    for shift in range(4):
        text = "a" * (CHUNK_BYTES - shift) + "é🙂ü" * 10 + "z" * 100
        path = tmp_path / f"split{shift}.txt"
        path.write_text(text, encoding="utf-8")
        corpus = open_corpus(path)
        assert corpus.length == len(text) and "".join(corpus.chunks()) == text


def test_invalid_byte_past_the_first_chunk_names_its_true_offset(tmp_path):
    offset = CHUNK_BYTES + 12345
    (tmp_path / "late.txt").write_bytes(b"a" * offset + b"\xff" + b"b" * 10)
    with pytest.raises(CorpusError, match=rf"late.txt: not UTF-8 text \(invalid byte 0xff at offset {offset}\)"):
        open_corpus(tmp_path / "late.txt")


def test_a_character_cut_short_at_the_end_is_reported(tmp_path):
    (tmp_path / "cut.txt").write_bytes("abc€".encode()[:-1])  # € is three bytes; the last is gone
    with pytest.raises(CorpusError, match=r"cut.txt: not UTF-8 text \(invalid byte 0xe2 at offset 3\)"):
        open_corpus(tmp_path / "cut.txt")


def test_nul_after_the_first_chunk_is_found(tmp_path):
    (tmp_path / "nul.txt").write_bytes(b"x" * (CHUNK_BYTES + 7) + b"\x00")
    with pytest.raises(CorpusError, match=f"character {CHUNK_BYTES + 7}"):
        open_corpus(tmp_path / "nul.txt")
