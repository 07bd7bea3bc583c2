"""`python -m bench corpus`: a second corpus for the time-budget benchmarks,
fetched from a package registry and never committed.

Paradise Lost (John Milton, 1667; public domain): the Project Gutenberg
etext of the Canterbury compression corpus, which the Brotli source package
on PyPI ships among its test files. Blank verse, against Tiny Shakespeare's
play dialogue: 0.46 MB once its Windows line endings and trailing spaces go.
The download is checked against a pinned SHA-256, so every machine trains on
the same text.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from minigpt.plumbing.atomic import atomic_write_bytes
from minigpt.plumbing.errors import MiniGPTError

PACKAGE = "brotli==1.1.0"
ARCHIVE = "Brotli-1.1.0.tar.gz"
MEMBER = "Brotli-1.1.0/tests/testdata/plrabn12.txt"
SHA256 = "07e2e0b461af78c7c647cb53dab39de560198e16f799b4516eccf0fbd69f764c"
DEFAULT_OUT = Path("data/paradise_lost.txt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the text")


def run(args: argparse.Namespace) -> None:
    if args.out.exists():
        print(f"{args.out} is already there ({args.out.stat().st_size:,} bytes)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(f"downloading the {PACKAGE} source package from PyPI for its copy of Paradise Lost...")
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                                 ":all:", PACKAGE, "--dest", tmp], capture_output=True, text=True)
        if result.returncode != 0:
            raise MiniGPTError(f"pip download {PACKAGE} failed: {result.stderr.strip().splitlines()[-1:]}")
        with tarfile.open(Path(tmp) / ARCHIVE) as archive:
            member = archive.extractfile(MEMBER)
            raw = member.read() if member else b""
    if hashlib.sha256(raw).hexdigest() != SHA256:
        raise MiniGPTError(f"{ARCHIVE}: {MEMBER} is not the expected text (SHA-256 differs)")
    lines = raw.decode("ascii").splitlines()
    text = "\n".join(line.rstrip() for line in lines).strip() + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, text.encode())
    print(f"wrote {args.out}: Paradise Lost, {len(text):,} characters")
