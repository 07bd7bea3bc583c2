"""minigpt-generate --chat: a conversation on the command line, one turn per line of input.

    minigpt-generate --chat --as ROMEO --to JULIET
    printf 'Is the day so young?\\nAy me!\\n' | minigpt-generate --chat --seed 1 > replies.txt

Each line read is the user's turn (\\n and \\t work, as in --prompt); the
model's turn streams to stdout after its tag, as the template writes it, and
ends at the next speaker (minigpt.chat). The template, where the model's
memory begins and each turn's seed go to stderr. The turns are appended to the
checkpoint's conversations file (minigpt.plumbing.conversations), where the
app shows them too; --no-record leaves it alone. End with Ctrl+D; Ctrl+C stops
the model's turn and ends the conversation (status 130).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from generate_cli import stream
from minigpt.chat import Template, TokenCounter, Turn, lay_out, speakers_of
from minigpt.plumbing.chat_settings import read_chat_settings
from minigpt.plumbing.conversations import (
    Conversation,
    ConversationsFileError,
    StoredTurn,
    append_turn,
    conversations_path,
    model_turn,
    user_turn,
)
from minigpt.plumbing.corpus import choose_corpus
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.terminal import printable, unescape

if TYPE_CHECKING:
    from minigpt.model import GPT
    from minigpt.plumbing.checkpoint import Checkpoint
    from minigpt.plumbing.settings import LoadedSettings, SamplingSettings


def chat(args: argparse.Namespace, checkpoint: Checkpoint, model: GPT, settings: SamplingSettings,
         loaded: LoadedSettings) -> int:
    """Talk until standard input ends; return the exit status."""
    template = choose_template(args, loaded)
    tokenizer = checkpoint.tokenizer
    if unknown := tokenizer.unknown_characters(template.user + template.model + template.separator):
        raise MiniGPTError(f"the template's tags hold characters the model does not know ({''.join(unknown)!r}); "
                           "choose other names with --as and --to")
    context, count = model.config.block_size, TokenCounter(tokenizer)
    conversation, first = Conversation(), 0
    for line in _lines(template.user):
        text = unescape(line)
        if not text.strip():
            continue
        if unknown := tokenizer.unknown_characters(text):
            _note(f"the model does not know {''.join(unknown)!r}: write the turn again without them")
            continue
        conversation.add(_record(args, user_turn(conversation.id, template.user, text)))
        prompt = lay_out([Turn(t.tag, t.text) for t in conversation.turns], template, context, count)
        if prompt.first > first or prompt.cut:
            first = prompt.first
            _note(f"memory: the model reads from turn {first + 1} on; the turns before no longer fit its "
                  f"{context}-token context" + (" (and only the end of this one)" if prompt.cut else ""))
        reply = template.reply_settings(settings).seeded()
        status, words = stream(model, tokenizer, prompt.text, reply, use_cache=not args.no_cache,
                               echo=template.model)
        conversation.add(_record(args, model_turn(conversation.id, template.model, words, prompt.text,
                                                  checkpoint.step, reply, args.checkpoint,
                                                  "cancelled" if status else "done")))
        if status:
            return status
    return 0


def choose_template(args: argparse.Namespace, loaded: LoadedSettings) -> Template:
    """The settings' [chat] template, else the one of the training text's speakers, with the roles asked for."""
    chat_settings, problems = read_chat_settings(loaded.document, loaded.path)
    for problem in problems:
        print(f"minigpt-generate: warning: {problem}", file=sys.stderr)
    corpus = choose_corpus(args.data)
    speakers = speakers_of(corpus)
    if chat_settings.fixed_roles:
        user = model = ""
        if args.user or args.model_name:
            _note(f"--as and --to are not used: the [chat] template of {loaded.path} sets who speaks")
        source = f"the [chat] template of {loaded.path}"
    else:
        default_user, default_model = speakers.default_roles() if speakers.style else ("", "")
        user, model = args.user or default_user, args.model_name or default_model
        source = f"the speakers of {corpus.name}"
    template = chat_settings.template(speakers, user, model, corpus.name, str(loaded.path))
    _note(f"you: {template.user.strip()!r}, the model: {template.model.strip()!r} ({source}); "
          "one turn a line, Ctrl+D ends")
    return template


def _lines(user_tag: str) -> Iterator[str]:
    """The lines of standard input, without their newline; at a terminal, each asked for with the user's tag."""
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            sys.stderr.write(printable(user_tag))
            sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            return
        yield line.removesuffix("\n").removesuffix("\r")


def _record(args: argparse.Namespace, turn: StoredTurn) -> StoredTurn:
    """Append turn to the checkpoint's conversations file, unless --no-record; a failure is a warning."""
    if not args.no_record:
        try:
            append_turn(conversations_path(Path(args.checkpoint)), turn)
        except ConversationsFileError as e:
            print(f"minigpt-generate: warning: {e}", file=sys.stderr)
    return turn


def _note(text: str) -> None:
    print(f"[{text}]", file=sys.stderr)
