"""The settings screen and the settings file, through the app."""

from __future__ import annotations

from textual.widgets import Input, Select, Static
from textual.widgets._toast import Toast
from tui_helpers import Messages, make_app, wait_for, wait_loaded, write_settings

from minigpt.plumbing.settings import SETTING_NAMES, SamplingSettings
from tui.screens.settings import FIELDS, SettingsScreen, format_value, parse_value


async def open_settings(pilot) -> SettingsScreen:
    await pilot.press("comma")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen) and pilot.app.focused is not None
                   and pilot.app.focused.id == "temperature", "the settings screen")
    return pilot.app.screen


async def test_settings_are_edited_saved_and_read_back_at_restart(workdir):
    path = write_settings(workdir, '# mine\n[other]\nkeep = "me"\n\n[sampling]\ntemperature = 0.8\n')
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_loaded(pilot)
        screen = await open_settings(pilot)
        assert screen.query_one("#temperature", Input).value == "0.8"
        await pilot.press("ctrl+u", *"0.5")  # the temperature field has the focus
        await wait_for(pilot, lambda: screen.query_one("#temperature", Input).value == "0.5", "the typing")
        screen.query_one("#stop", Input).value = '"\\n\\n", "END"'
        screen.query_one("#theme", Select).value = "nord"
        await pilot.click("#save")
        await wait_for(pilot, lambda: "temperature = 0.5" in path.read_text(), "the save")
        assert not isinstance(app.screen, SettingsScreen)
        assert app.sampling.temperature == 0.5
    text = path.read_text()
    assert "temperature = 0.5" in text and '[other]\nkeep = "me"' in text and '[tui]\ntheme = "nord"' in text

    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        assert app.sampling.temperature == 0.5
        assert app.sampling.stop == ("\n\n", "END")
        assert app.theme == "nord"


async def test_bad_values_are_shown_inline_and_not_saved(workdir):
    messages = Messages()
    app = make_app()
    async with app.run_test(size=(100, 40), message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        screen = await open_settings(pilot)
        await pilot.press("ctrl+u", *"500")
        hint = screen.query_one("#temperature-hint", Static)
        await wait_for(pilot, lambda: hint.has_class("-invalid"), "the problem to show")
        assert "temperature = 500.0: expected a number from 0 (greedy) to 100" in str(hint.render())
        await pilot.press("enter")
        await wait_for(pilot, lambda: messages.notices("error"), "the refusal")
        assert app.screen is screen, "Save refuses while a value is bad"
        await pilot.press("ctrl+u", "1")
        await wait_for(pilot, lambda: not hint.has_class("-invalid"), "the problem to go")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not screen, "the screen to close")
    assert not (workdir / "minigpt.toml").exists()


async def test_cancel_discards_changes_and_the_theme_preview(workdir):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_loaded(pilot)
        before, theme = app.sampling, app.theme
        screen = await open_settings(pilot)
        await pilot.press("ctrl+u", "0")
        screen.query_one("#theme", Select).value = "nord"
        await wait_for(pilot, lambda: app.theme == "nord", "the theme preview")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not screen, "the screen to close")
        assert app.sampling == before and app.theme == theme
    assert not (workdir / "minigpt.toml").exists()


async def test_a_malformed_settings_file_is_reported_and_left_untouched(workdir):
    path = write_settings(workdir, "[sampling]\ntemperature = [\n")
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        warnings = messages.notices("warning")
        assert len(warnings) == 1 and warnings[0].startswith("minigpt.toml: not valid TOML")
        assert app.sampling == SamplingSettings()
        await open_settings(pilot)
        await pilot.press("ctrl+u", "1", "enter")  # Save is refused: the file's content would be lost
        await wait_for(pilot, lambda: messages.notices("error"), "the answer")
        errors = messages.notices("error")
        assert len(errors) == 1 and "not saved" in errors[0]
        assert app.sampling.temperature == 1.0, "the new settings apply until the app quits"
    assert path.read_text() == "[sampling]\ntemperature = [\n"


async def test_a_bad_value_and_an_unknown_theme_are_reported(workdir):
    write_settings(workdir, '[sampling]\ntop_p = 7\n\n[tui]\ntheme = "no-such-theme"\n')
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        notes = messages.notices()
        assert any("top_p" in n for n in notes) and any("no-such-theme" in n for n in notes)
        assert app.theme == "textual-dark"


def test_the_fields_are_the_settings_with_their_labels_and_input_types():
    assert [f.name for f in FIELDS] == list(SETTING_NAMES)
    assert [(f.label, f.kind) for f in FIELDS] == [
        ("Temperature", "number"), ("Top-k", "integer"), ("Top-p", "number"), ("Repetition penalty", "number"),
        ("Max tokens", "integer"), ("Seed", "integer"), ("Stop strings", "text")]


def test_each_field_round_trips_between_settings_and_text():
    settings = SamplingSettings(temperature=0.3, top_k=40, top_p=0.9, repetition_penalty=1.2, max_new_tokens=77,
                                seed=5, stop=("\n\n", 'say "hi"', "a,b"))
    values = {f.name: parse_value(f, format_value(f, settings)) for f in FIELDS}
    assert SamplingSettings(**values) == settings


def test_stop_strings_need_quotes():
    stop = next(f for f in FIELDS if f.name == "stop")
    assert parse_value(stop, "") == ()
    for bad in ("END", '"a", 3', '"unclosed'):
        try:
            parse_value(stop, bad)
        except ValueError as e:
            assert str(e).startswith("stop:")
        else:
            raise AssertionError(f"{bad!r} was accepted")


async def test_ctrl_s_saves_from_any_field_and_the_stop_strings_show_no_value_when_empty(workdir):
    path = write_settings(workdir, "[sampling]\ntemperature = 0.8\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        screen = await open_settings(pilot)
        stop = screen.query_one("#stop", Input)
        assert stop.value == "" and stop.placeholder == "none", "the example is no longer dressed as a value"
        assert '"\\n\\n", "THE END"' in str(screen.query_one("#stop-hint", Static).render()), "it is in the hint"
        assert "ctrl+s saves" in screen.query_one("#dialog").border_title
        await pilot.press("ctrl+u", *"0.6", "ctrl+s")
        await wait_for(pilot, lambda: "temperature = 0.6" in path.read_text(), "the save")
        assert app.screen is not screen and app.sampling.temperature == 0.6


async def test_a_notification_shows_the_brackets_of_the_file_it_quotes(workdir):
    """Toasts once read their text as markup: `bad.toml: [sampling] max_new_tokens = -3` lost its table."""
    write_settings(workdir, "[sampling]\nmax_new_tokens = -3\n")
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: app.screen.query(Toast), "the toast")
        shown = " ".join(str(toast.render()) for toast in app.screen.query(Toast))
        assert "minigpt.toml: [sampling] max_new_tokens = -3" in shown
        assert any("[sampling] max_new_tokens = -3" in entry for entry in app.event_log.entries), "and in the Log"
