"""The app's keys as a person meets them: every key of every view, after the
user's keymap; the help screen's list of them, grouped by where they act; the
command palette; and Escape typed just before another key.

Escape then a key. A terminal sends Escape as the byte ESC, and Alt+key as ESC
followed by the key, so Escape then `4` typed fast (or over SSH, or by tmux
send-keys) arrives as one sequence. Textual reads it as alt+4, or, for a
digit, as the character macOS's Option key makes of it (ESC 4 as `¢`). The app
binds no Alt keys and takes no such characters typed that way, so it reads
both as what was meant: Escape, then the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual import events
from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
from textual.actions import parse as parse_action
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen


def read_escape_digits_as_alt() -> None:
    """Let ESC+digit (and ESC+`-`, `=`, `§`) reach the app as alt+key, not as the
    characters Textual maps them to for macOS's Option key."""
    option_characters = [sequence for sequence, key in ANSI_SEQUENCES_KEYS.items()
                         if len(sequence) == 2 and sequence[0] == "\x1b" and isinstance(key, str)]
    for sequence in option_characters:
        del ANSI_SEQUENCES_KEYS[sequence]


def key_after_escape(event: events.Key) -> str | None:
    """For alt+<a key of one character>, that key (alt+4 -> "4", alt+t -> "t"); else None."""
    modifier, _, key = event.key.partition("+")
    if modifier == "alt" and event.character and len(event.character) == 1:
        return key
    return None


def press_escape_then(node: DOMNode, key: str) -> None:
    """Act as if Escape, then key, had been pressed (outside the prompt, which has its own way)."""
    node.app.simulate_key("escape")
    node.app.simulate_key(key)


HelpRow = tuple[str, str, str]  # key(s), what it does, binding id


def help_groups(bindings: Iterable[tuple[DOMNode, Binding, str]], titles: dict[str, str]) -> list[
        tuple[str, list[HelpRow]]]:
    """(title, rows) for each group of keys, in the order titles gives; bindings are
    (node, binding, key as shown), and a node's group is its class's name in titles."""
    groups: dict[str, list[HelpRow]] = {title: [] for title in titles.values()}
    for node, binding, key in bindings:
        title = titles.get(type(node).__name__, next(iter(titles.values())))
        groups[title].append((key, binding.tooltip or binding.description, binding.id or ""))
    return [(title, rows) for title, rows in groups.items() if rows]


class AppKeys(App[None]):
    """The keys half of MiniGPTApp (tui.app): every binding of its views with the node
    that runs it, how each looks after the user's [keymap], the help screen, the
    command palette, and Escape typed just before a key. The app names its views'
    nodes (binding_nodes) and the help screen's group of each (HELP_GROUPS)."""

    HELP_GROUPS: ClassVar[dict[str, str]] = {}  # a node's class name -> its group's title; the first is the default
    keymap: dict[str, str]  # the user's [keymap], as applied
    settings_path: Path | None

    def binding_nodes(self) -> list[DOMNode]:
        """The app and its views: the nodes whose bindings are keys of the app."""
        return [self]

    def get_binding(self, binding_id: str) -> Binding:
        return next(binding for _, binding in self.all_bindings() if binding.id == binding_id)

    def on_key(self, event: events.Key) -> None:
        """Escape and a key typed at once arrive as alt+key (tui.keys): read them as the two keys."""
        if (key := key_after_escape(event)) is not None:
            event.stop()
            press_escape_then(self, key)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        keys = [(node, binding, self.key_display(binding)) for node, binding in self.all_bindings()]
        self.push_screen(HelpScreen(help_groups(keys, self.HELP_GROUPS), str(self.settings_path or "minigpt.toml")))

    def key_display(self, binding: Binding) -> str:
        """How the keys of binding look, after the user's keymap: e.g. "? / f1"."""
        keys = self.keymap.get(binding.id, binding.key).split(",")
        return " / ".join(self.get_key_display(replace(binding, key=key.strip())) for key in keys)

    def all_bindings(self) -> list[tuple[DOMNode, Binding]]:
        """Every binding of the app and its views, with the node whose action it runs (once per id:
        the completion list shows some of the pane's)."""
        found: dict[str | None, tuple[DOMNode, Binding]] = {}
        for node in self.binding_nodes():
            for binding in node.BINDINGS:
                if isinstance(binding, Binding) and binding.id not in found:
                    found[binding.id] = (node, binding)
        return list(found.values())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action of the app and its views that can run now, and Textual's own (theme, keys...)."""
        for node, binding in self.all_bindings():
            _, action, parameters = parse_action(binding.action)
            if binding.id != "quit" and node.check_action(action, parameters):
                yield SystemCommand(binding.tooltip or binding.description,
                                    f"key: {self.key_display(binding)}  ·  id: {binding.id}",
                                    lambda a=binding.action, n=node: self.run_action(a, n))
        yield from super().get_system_commands(screen)
