"""minigpt-tokenize: learn a tokenizer from a text file and see how it splits text.

    minigpt-tokenize --text "To be, or not to be"              # char tokenizer of the default corpus
    minigpt-tokenize --tokenizer bpe --vocab-size 1024 scene.txt
    minigpt-tokenize --checkpoint checkpoints/model.pt --text "To be"   # the tokenizer a model was trained with
    echo "any text" | minigpt-tokenize --tokenizer bpe            # or - among the files

As Unix tools do, the arguments are files (- is standard input), and a text to
split comes through --text or standard input. It prints the vocabulary's
statistics and the compression on the corpus (characters per token), then each
text with its tokens' boundaries marked (on a terminal, coloured; elsewhere
by a │ between tokens) and the token ids beneath.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minigpt.plumbing import config as cfg
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.fields import add_flags, flag_values
from minigpt.plumbing.terminal import printable

TOKEN_STYLES = ("black on bright_cyan", "black on bright_yellow")  # neighbouring tokens alternate
SPLIT_STYLE = "black on bright_magenta underline"  # one character whose bytes span several tokens
BOUNDARY = "│"  # between two tokens, where there are no colours (a pipe, a file, NO_COLOR)
SPLIT_MARKS = ("‹", "›")  # around a character whose bytes span several tokens, likewise
LONGEST_SHOWN = 8
TOKENIZER_KEYS = ("tokenizer", "vocab_size", "val_fraction")  # the settings that make a tokenizer, as in training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigpt-tokenize", description="Learn a tokenizer from a text file and show how it splits text.")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="UTF-8 text files to split into tokens (-: standard input, also read when it is "
                             "not a terminal and neither a FILE nor --text is given)")
    parser.add_argument("--text", help="a text to split into tokens, given here")
    parser.add_argument("--data", type=Path, default=None,
                        help="UTF-8 text to learn from (default: data/input.txt, else the built-in corpus)")
    parser.add_argument("--checkpoint", type=Path, help="show the tokenizer of this checkpoint instead")
    learned = parser.add_argument_group("the tokenizer to learn", "BPE learns from the text as training does: "
                                        "all of it but the validation split at its end.")
    add_flags(learned, [cfg.field_specs()[key] for key in TOKENIZER_KEYS])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return tokenize(args)
    except MiniGPTError as e:
        print(f"minigpt-tokenize: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minigpt-tokenize: interrupted", file=sys.stderr)
        return 130


def tokenize(args: argparse.Namespace) -> int:
    from rich.console import Console

    from minigpt.plumbing.corpus import choose_corpus

    config = cfg.resolve("default", flags=flag_values(args, TOKENIZER_KEYS))
    texts = texts_to_split(args.files, args.text)  # a missing file fails here, before the tokenizer is learned
    console = Console(highlight=False)
    corpus = choose_corpus(args.data)
    if args.checkpoint:
        from minigpt.plumbing.checkpoint import load_checkpoint

        tokenizer, source = load_checkpoint(args.checkpoint).tokenizer, str(args.checkpoint)
    else:
        from minigpt.data import make_tokenizer
        from minigpt.plumbing.session import merges_progress

        with console.status(f"learning a {config.tokenizer} tokenizer from {corpus.name}…") as status:
            tokenizer = make_tokenizer(config.tokenizer, corpus, config.val_fraction, config.vocab_size,
                                       lambda done, total: status.update(merges_progress(done, total)))
        source = f"learned from {corpus.name}"
    describe(console, tokenizer, source, corpus)
    for name, text in texts:
        if text:
            show_tokens(console, tokenizer, text, name)
    return 0


def texts_to_split(files: list[str], text: str | None) -> list[tuple[str, str]]:
    """(name, text) of each text to split: --text, then each file, in order. Standard input
    is read for - and, when there is nothing else to read, when it is not a terminal."""
    from minigpt.plumbing.corpus import CorpusError, read_text

    texts = [("--text", text)] if text is not None else []
    if not files and text is None and not sys.stdin.isatty():
        files = ["-"]
    for name in files:
        try:
            texts.append(("standard input" if name == "-" else name, read_text(name, "a FILE argument")))
        except CorpusError as e:
            hint = f"; to split the text {name!r} itself, pass --text {name!r}" if not Path(name).exists() else ""
            raise CorpusError(f"{e}{hint}") from None
    return texts


def describe(console, tokenizer, source: str, corpus) -> None:
    """The vocabulary, and how much it compresses the corpus."""
    corpus_text = "".join(corpus.chunks())
    tokens = len(tokenizer.encode_array(corpus_text)) if not tokenizer.unknown_characters(corpus_text) else None
    kind = "byte-level BPE" if tokenizer.kind == "bpe" else "character"
    merges = f" (256 bytes + {tokenizer.vocab_size - 256:,} merges)" if tokenizer.kind == "bpe" else ""
    console.print(f"{kind} tokenizer ({source}): {tokenizer.vocab_size:,} tokens{merges}", soft_wrap=True)
    if tokens:
        console.print(f"{corpus.name}: {len(corpus_text):,} characters -> {tokens:,} tokens, "
                      f"{len(corpus_text) / tokens:.2f} characters per token", soft_wrap=True)
    else:
        console.print(f"{corpus.name} has characters this tokenizer lacks: no compression figure")
    longest = sorted(range(tokenizer.vocab_size), key=lambda i: (-len(tokenizer.token_bytes(i)), i))[:LONGEST_SHOWN]
    console.print("longest tokens: " + "  ".join(repr(tokenizer.decode([i])) for i in longest), soft_wrap=True)


def show_tokens(console, tokenizer, text: str, name: str) -> None:
    """text with its tokens marked, then the ids: on a coloured background, neighbours
    alternating, or, without colours, with a BOUNDARY between two tokens."""
    from rich.text import Text

    unknown = tokenizer.unknown_characters(text)
    if unknown:
        from minigpt.tokenizer import UnknownCharactersError

        raise UnknownCharactersError(unknown, f"{name} uses them; a char tokenizer knows only its corpus's "
                                     "characters, and --tokenizer bpe encodes any text")
    from minigpt.bpe import Utf8Stream

    coloured = console.color_system is not None
    ids = tokenizer.encode(text)
    shown, characters, held = Text(), Utf8Stream(), 0
    for index, token in enumerate(ids):
        piece = characters.feed(tokenizer.token_bytes(token))
        held += 1
        if piece:  # a token that ends inside a character is shown with the tokens that finish it
            split = held > 1
            piece = printable(piece, tab="→").replace("\n", "↵\n")
            if coloured:
                shown.append(piece, style=SPLIT_STYLE if split else TOKEN_STYLES[index % 2])
            else:
                shown.append((BOUNDARY if len(shown) else "") + (piece.join(SPLIT_MARKS) if split else piece))
            held = 0
    marks = "coloured" if coloured else f"separated by {BOUNDARY}"
    split = "marked" if coloured else "between " + " and ".join(SPLIT_MARKS)
    console.print(f"{name}: {len(text):,} characters -> {len(ids):,} tokens ({len(text) / max(len(ids), 1):.2f} per "
                  f"token), {marks}; a character split across tokens is {split}", soft_wrap=True)
    console.print(shown, soft_wrap=not coloured)
    console.print("ids: " + " ".join(map(str, ids)), soft_wrap=True)


if __name__ == "__main__":
    raise SystemExit(main())
