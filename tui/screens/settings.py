"""The sampling settings screen: one field per setting, with the label and
help line that SamplingSettings gives it, checked as you type by its own
rules; and the theme. Enter or Ctrl+S saves from any field, Escape cancels:
the dialog's title bar says so."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Select, Static

from minigpt.plumbing.settings import SamplingSettingError, SamplingSettings, field_specs


@dataclass(frozen=True)
class Field:
    name: str  # the SamplingSettings attribute
    label: str
    kind: str  # "number", "integer" or "text" (Input's type)
    hint: str  # the setting's help line


INPUT_TYPES = {"float": "number", "int": "integer"}  # any other setting (the stop strings) is text
FIELDS = tuple(Field(name, spec.metadata["label"], INPUT_TYPES.get(spec.type, "text"), spec.metadata["help"])
               for name, spec in field_specs().items())
STOP_EXAMPLE = '"\\n\\n", "THE END"'  # how the stop strings are typed: TOML strings, separated by commas
KEYS = "enter or ctrl+s saves · esc cancels"


@dataclass(frozen=True)
class SettingsResult:
    sampling: SamplingSettings
    theme: str


def format_value(field: Field, settings: SamplingSettings) -> str:
    value = getattr(settings, field.name)
    if field.name == "stop":
        return ", ".join(json.dumps(s, ensure_ascii=False) for s in value)  # TOML's basic strings
    return str(value)


def help_line(field: Field) -> str:
    """The help line under a field (the stop strings' with an example of how to type them)."""
    return f"{field.hint}, e.g. {STOP_EXAMPLE}" if field.name == "stop" else field.hint


def parse_value(field: Field, text: str) -> Any:
    """The typed text as a setting value; ValueError says what is wrong."""
    text = text.strip()
    if field.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{field.name}: expected a whole number") from None
    if field.kind == "number":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{field.name}: expected a number") from None
    try:
        stops = tomllib.loads(f"v = [{text}]")["v"]
    except tomllib.TOMLDecodeError:
        raise ValueError(f"stop: expected quoted strings separated by commas, e.g. {STOP_EXAMPLE}") from None
    if not all(isinstance(s, str) for s in stops):
        raise ValueError("stop: every stop string must be in quotes")
    return tuple(stops)


class SettingValidator(Validator):
    """Checks one field with SamplingSettings' own rules, so the screen and
    the settings file can never disagree on what is allowed."""

    def __init__(self, field: Field) -> None:
        super().__init__()
        self.field = field

    def validate(self, value: str) -> ValidationResult:
        try:
            SamplingSettings(**{self.field.name: parse_value(self.field, value)})
        except (ValueError, SamplingSettingError) as e:
            return self.failure(str(e))
        return self.success()


class SettingsScreen(ModalScreen[SettingsResult | None]):
    """Edit the sampling settings; Save returns them, Escape discards."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="settings.cancel"),
                Binding("ctrl+s", "save", "Save", id="settings.save", priority=True)]
    AUTO_FOCUS = "#temperature"

    def __init__(self, settings: SamplingSettings, path: str, theme: str, themes: list[str]) -> None:
        super().__init__()
        self.settings = settings
        self.path = path
        self.theme_name = theme
        self.themes = themes

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog") as dialog:
            dialog.border_title = f"Sampling settings · {KEYS}"
            dialog.border_subtitle = self.path
            for field in FIELDS:
                with Horizontal(classes="field"):
                    yield Label(field.label, classes="name")
                    yield Input(format_value(field, self.settings), id=field.name, type=field.kind, compact=True,
                                placeholder="none" if field.name == "stop" else "",
                                validators=[SettingValidator(field)], valid_empty=False, select_on_focus=False)
                yield Static(help_line(field), id=f"{field.name}-hint", classes="hint", markup=False)
            with Horizontal(classes="field"):
                yield Label("Theme", classes="name")
                yield Select([(t, t) for t in self.themes], value=self.theme_name, allow_blank=False, id="theme",
                             compact=True)
            with Horizontal(id="buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    @on(Input.Changed)
    def show_problem(self, event: Input.Changed) -> None:
        field = next(f for f in FIELDS if f.name == event.input.id)
        hint = self.query_one(f"#{field.name}-hint", Static)
        problems = event.validation_result.failure_descriptions if event.validation_result else []
        hint.update(problems[0] if problems else help_line(field))
        hint.set_class(bool(problems), "-invalid")

    @on(Select.Changed, "#theme")
    def preview_theme(self, event: Select.Changed) -> None:
        self.app.theme = str(event.value)

    @on(Button.Pressed, "#save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        inputs = [self.query_one(f"#{f.name}", Input) for f in FIELDS]
        invalid = [i for i in inputs if not i.validate(i.value).is_valid]
        if invalid:
            invalid[0].focus()
            self.notify(f"Fix {len(invalid)} setting(s) first", severity="error")
            return
        values = {f.name: parse_value(f, i.value) for f, i in zip(FIELDS, inputs, strict=True)}
        self.dismiss(SettingsResult(SamplingSettings(**values), self.app.theme))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.app.theme = self.theme_name  # undo the preview
        self.dismiss(None)
