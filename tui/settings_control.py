"""The settings file in the app: a part of MiniGPTApp (tui.app), in a module of its own.

The loader reads the file (minigpt.plumbing.settings) and posts what it found:
the sampling settings go down to the views, the theme and the [keymap] apply,
and every problem in the file is said in a notification, the file left as it
is. The settings screen (key ,) edits them; a worker writes them back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.worker import Worker, WorkerState

from tui.messages import SettingsLoaded
from tui.preferences import read_keymap, read_theme, with_theme
from tui.screens.settings import SettingsResult, SettingsScreen

if TYPE_CHECKING:
    from minigpt.plumbing.settings import SamplingSettings


class SettingsControl(App[None]):
    """The settings half of MiniGPTApp: it uses the app's sampling, settings_path,
    settings_document, keymap, chat view and view bar."""

    def on_settings_loaded(self, message: SettingsLoaded) -> None:
        loaded = message.loaded
        self.sampling, self.settings_path, self.settings_document = loaded.sampling, loaded.path, loaded.document
        self.chat.settings, self.chat.settings_file = loaded.document, str(loaded.path)
        theme, theme_problems = read_theme(loaded.document, loaded.path, self.available_themes)
        binding_ids = [binding.id for _, binding in self.all_bindings()]
        keymap, keymap_problems = read_keymap(loaded.document, loaded.path, binding_ids)
        if theme:
            self.theme = theme
        self.keymap = keymap
        self.set_keymap(keymap)
        for problem in loaded.problems + theme_problems + keymap_problems:
            self.notify(problem, title="Settings file problem (file left as it is)", severity="warning", timeout=15)
        self.refresh_bindings()
        self._show_view_keys()

    def action_settings(self) -> None:
        assert self.sampling is not None and self.settings_path is not None
        screen = SettingsScreen(self.sampling, str(self.settings_path), self.theme, sorted(self.available_themes))
        self.push_screen(screen, self._settings_closed)

    def _settings_closed(self, result: SettingsResult | None) -> None:
        if result is not None:
            self.sampling = result.sampling
            self._write_settings(result.sampling, with_theme(self.settings_document, result.theme))

    @work(thread=True, exit_on_error=False, group="settings", name="settings")
    def _write_settings(self, sampling: SamplingSettings, document: dict) -> dict:
        from minigpt.plumbing.settings import save_settings

        assert self.settings_path is not None
        save_settings(self.settings_path, sampling, document)
        return document

    def settings_written(self, worker: Worker) -> None:
        """The settings worker has ended: saved, or why not."""
        if worker.state == WorkerState.SUCCESS:
            self.settings_document = worker.result
            self.notify(f"Saved to {self.settings_path}", title="Settings")
        else:
            self._report(worker.error, "Settings not saved (they apply until you quit)")
