"""The chat template of the settings file, for a text without speakers or by choice:

    [chat]
    user_prefix = "Q: "       # begins the user's turns
    model_prefix = "A: "      # begins the model's turns
    separator = "\\n"          # between two turns (default: a newline)
    stop = ["\\nQ"]            # more strings that end the model's turn

With both prefixes the settings' template is used, whatever the text; without
them, separator and stop change the template found in the text. Reading never
fails: each bad key gives one line naming the file, the key and what was
expected, and is left out. The template itself is minigpt.chat's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from minigpt.chat import NoTemplateError, Speakers, Template
from minigpt.plumbing.errors import did_you_mean

TABLE = "chat"
KEYS = ("user_prefix", "model_prefix", "separator", "stop")

NO_TEMPLATE = (
    "{corpus} has no speakers, so there is no template to lay a conversation out in. A chat model only "
    "completes a text: the conversation written in a format it has read, such as a play's "
    "(\"ROMEO:\" on a line, the words below, a blank line between turns) or a question-and-answer text "
    "(\"Q: ...\" then \"A: ...\"). Train on such a text, or set a template in {settings}: "
    "[chat] user_prefix = \"Q: \", model_prefix = \"A: \", separator = \"\\n\"")


@dataclass(frozen=True)
class ChatSettings:
    user_prefix: str | None = None
    model_prefix: str | None = None
    separator: str | None = None
    stop: tuple[str, ...] = ()

    def template(self, speakers: Speakers, user: str, model: str, corpus: str, settings_file: str) -> Template:
        """The template to chat in: these settings' own, else the text's (user and model being the
        speakers' names), changed by separator and stop; NoTemplateError says what to do when neither is."""
        if self.user_prefix and self.model_prefix:
            template = Template(self.user_prefix, self.model_prefix)
        elif speakers.style is not None:
            template = speakers.template(user, model)
        else:
            raise NoTemplateError(NO_TEMPLATE.format(corpus=corpus, settings=settings_file))
        separator = template.separator if self.separator is None else self.separator
        return replace(template, separator=separator, stop=template.stop + self.stop)

    @property
    def fixed_roles(self) -> bool:
        """The prefixes are the settings': the user cannot choose whom each plays."""
        return bool(self.user_prefix and self.model_prefix)


def read_chat_settings(document: dict[str, Any], path: str | Path) -> tuple[ChatSettings, list[str]]:
    """The [chat] table of a settings file as read (minigpt.plumbing.settings), and a line per problem."""
    table = document.get(TABLE, {})
    if not isinstance(table, dict):
        return ChatSettings(), [f"{path}: {TABLE} = {table!r}: expected a [{TABLE}] table; ignored"]
    good: dict[str, Any] = {}
    problems = []
    for key, value in table.items():
        if key not in KEYS:
            problems.append(f"{path}: [{TABLE}] unknown key {key!r}{did_you_mean(key, KEYS)}; ignored")
        elif (expected := _problem(key, value)) is not None:
            problems.append(f"{path}: [{TABLE}] {key} = {value!r}: expected {expected}; ignored")
        else:
            good[key] = tuple([value] if isinstance(value, str) else value) if key == "stop" else value
    if ("user_prefix" in table) != ("model_prefix" in table):
        given, missing = ("user_prefix", "model_prefix") if "user_prefix" in table else ("model_prefix", "user_prefix")
        problems.append(f"{path}: [{TABLE}] {given} is set but {missing} is not: a template needs both; "
                        f"{given} ignored")
    if ("user_prefix" in good) != ("model_prefix" in good):  # one missing or bad: neither is used
        for key in ("user_prefix", "model_prefix"):
            good.pop(key, None)
    return ChatSettings(**good), problems


def _problem(key: str, value: Any) -> str | None:
    """What key expects, if value is not that."""
    if key == "stop":
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and all(isinstance(s, str) and s for s in items):
            return None
        return "a non-empty string or a list of them"
    if key == "separator":
        return None if isinstance(value, str) else 'a string, e.g. "\\n" or "\\n\\n" (a blank line)'
    if isinstance(value, str) and value.strip():
        return None
    return 'a string with more than white space, e.g. "Q: "'
