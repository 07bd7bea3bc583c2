"""Pilot tests of the prompt and the actions on completions: multi-line prompts, the
prompt history, continue, regenerate, copy, inspect, export, and the completions
kept beside the checkpoint across launches."""

from __future__ import annotations

import json

from textual import events
from textual._xterm_parser import XTermParser
from tui_helpers import Messages, complete, completions_ended, make_app, wait_for, wait_loaded, write_settings

from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.completions import completions_path, load_recent, new_completion
from minigpt.plumbing.corpus import BUILTIN_NAME, Corpus, default_prompt
from minigpt.plumbing.history import load_history
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate
from tui.views.completions import EARLIER_SHOWN, CompletionsPane, EarlierLoaded
from tui.widgets.completion_list import Completion, CompletionList
from tui.widgets.prompt import PromptInput

FILE = "checkpoints/model.completions.jsonl"
HISTORY = "minigpt-history.jsonl"


def stored(workdir) -> list:
    return load_recent(workdir / FILE, 1000).completions


def asked(app) -> list[Completion]:
    """The completions the user asked for, oldest first (no samples)."""
    return list(app.query(".-prompt").results(Completion))


async def focus_prompt(pilot) -> PromptInput:
    prompt = pilot.app.query_one("#prompt", PromptInput)
    await pilot.press("slash")
    await wait_for(pilot, lambda: pilot.app.focused is prompt, "the prompt's focus")
    return prompt


async def leave_prompt(pilot) -> None:
    await pilot.press("escape")
    await wait_for(pilot, lambda: isinstance(pilot.app.focused, CompletionList), "the list's focus")


async def files_read(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.completions._history is not None, "the files to be read")


async def test_ctrl_j_shift_enter_and_a_typed_backslash_n_make_newlines(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 5\n")
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        prompt = await focus_prompt(pilot)
        await pilot.press("a", "ctrl+j", "b", "shift+enter", "c", "backslash", "n", "d")
        await wait_for(pilot, lambda: prompt.text == "a\nb\nc\\nd", "the typed text")
        assert prompt.size.height == 3, "the prompt grows with its lines"
        assert app.completions.current_prompt() == "a\nb\nc\nd"
        await pilot.press("enter")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        assert asked(app)[0].prompt == "a\nb\nc\nd" and prompt.text == ""
        await wait_for(pilot, lambda: len(stored(workdir)) == 1, "the completion to be stored")
        assert stored(workdir)[0].prompt == "a\nb\nc\nd"


async def test_pasted_lines_keep_their_newlines(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 5\n")
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        prompt = await focus_prompt(pilot)
        app.post_message(events.Paste("the cat\nsat on\nthe mat"))  # as the terminal sends it
        await wait_for(pilot, lambda: prompt.text == "the cat\nsat on\nthe mat", "the paste")
        await pilot.press("enter")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        assert asked(app)[0].prompt == "the cat\nsat on\nthe mat"


async def test_history_walks_with_up_and_down_and_lasts_across_launches(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 5\n")
    async with make_app().run_test() as pilot:
        await wait_loaded(pilot)
        await files_read(pilot)
        for n, text in enumerate(["the cat", "a dog\nsat", "the cat"], start=1):
            await complete(pilot, text)
            await wait_for(pilot, lambda n=n: completions_ended(pilot.app) == n, "the completion")
        await wait_for(pilot, lambda: len((workdir / HISTORY).read_text().splitlines()) == 3, "the history")

    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await files_read(pilot)
        assert load_history(workdir / HISTORY).prompts == ["a dog\nsat", "the cat"], "deduplicated"
        prompt = await focus_prompt(pilot)
        await pilot.press("x")  # a draft, kept while walking
        # Within a two-line entry, Up and Down move the cursor first, as in a shell.
        steps = [("up", "the cat", 0), ("up", "a dog\nsat", 1), ("up", "a dog\nsat", 0), ("up", "a dog\nsat", 0),
                 ("down", "a dog\nsat", 1), ("down", "the cat", 0), ("down", "x", 0)]
        for key, text, row in steps:
            await pilot.press(key)
            await wait_for(pilot, lambda text=text, row=row: (prompt.text, prompt.cursor_location[0]) == (text, row),
                           f"{key} to show {text!r} on row {row}")
        # The completions of the first launch are shown again, and the actions work on them.
        assert [c.prompt for c in asked(app)] == ["the cat", "a dog\nsat", "the cat"]
        assert [c.record for c in asked(app)] == stored(workdir)


async def test_actions_on_the_newest_and_the_selected_completion(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 20\nseed = 3\n")
    messages = Messages()
    app = make_app()
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await files_read(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Continue the completion with more tokens" not in titles, "nothing to continue yet"
        await complete(pilot, "the cat")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        await leave_prompt(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Continue the completion with more tokens", "Inspect the completion",
                "Regenerate the completion: the same prompt, a new seed"} <= titles
        assert not app.screen.active_bindings["c"].binding.show, "the Footer shows the actions only for a selection"

        await pilot.press("c")  # continue the newest: its prompt and text, then more
        await wait_for(pilot, lambda: completions_ended(app) == 2 and len(stored(workdir)) == 2, "the continuation")
        first, continued = stored(workdir)
        assert continued.prompt == first.prompt + first.text and continued.continues == first.id
        assert asked(app)[1].record == continued and "continuation" in asked(app)[1].title

        await pilot.press("up", "up")  # select the first one
        await wait_for(pilot, lambda: app.completions.list.selected is asked(app)[0], "the selection")
        assert asked(app)[0].has_class("-selected") and app.screen.active_bindings["c"].binding.show
        await pilot.press("r")  # regenerate it: the same prompt, a new seed
        await wait_for(pilot, lambda: completions_ended(app) == 3 and len(stored(workdir)) == 3, "the regeneration")
        again = stored(workdir)[2]
        assert again.prompt == "the cat" and again.seed != first.seed and again.continues is None
        assert app.completions.list.selected is None, "a new completion lets go of the selection"

        await pilot.press("y")  # copy the newest: OSC 52 and a file
        newest = asked(app)[2]
        await wait_for(pilot, lambda: app.clipboard == "the cat" + newest.text, "the copy")
        copied = workdir / "checkpoints/model.copied.txt"
        await wait_for(pilot, lambda: copied.exists() and copied.read_text() == "the cat" + newest.text, "the file")
        assert any(str(copied) in n for n in messages.notices())

        await pilot.press("i")
        await wait_for(pilot, lambda: messages.of(CompletionsPane.InspectRequested), "the inspect request")
        request = messages.of(CompletionsPane.InspectRequested)[0]
        assert (request.prompt, request.text, request.settings, request.seed) == (
            again.prompt, again.text, again.settings, again.seed)
        await wait_for(pilot, lambda: app.current_view == "inspect-view", "the Inspect view")
        await wait_for(pilot, lambda: app.inspector.inspected is not None, "the inspection")
        assert app.inspector.inspected.inspection.settings.seed == again.seed  # the draws that made it
        await pilot.press("1")  # back to the completions

        await pilot.press("e")
        export = workdir / "checkpoints/model.completions.md"
        await wait_for(pilot, lambda: export.exists(), "the export")
        assert export.read_text().count("\n## ") == 3
        assert any(f"Exported 3 completions to {export}" in n for n in messages.notices())


async def test_selection_moves_with_up_down_click_and_escape(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 5\n")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        for n in (1, 2):
            await complete(pilot, "the")
            await wait_for(pilot, lambda n=n: completions_ended(app) == n, "the completion")
        await leave_prompt(pilot)
        listing = app.completions.list
        first, second = asked(app)
        for key, expected in [("up", second), ("up", first), ("up", first), ("down", second), ("down", None)]:
            await pilot.press(key)
            await wait_for(pilot, lambda expected=expected: listing.selected is expected, f"{key} -> {expected}")
        await pilot.click(first)
        await wait_for(pilot, lambda: listing.selected is first, "the click to select")
        await pilot.press("escape")
        await wait_for(pilot, lambda: listing.selected is None and not first.has_class("-selected"), "escape")
        assert app.completions.selected_completion is second, "without a selection: the newest"


async def test_a_stored_completion_is_reproduced_exactly_from_its_seed_and_settings(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 60\ntemperature = 1.0\n")  # seed -1: a random one
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await pilot.press("s")  # the checkpoint holds the weights the completion is sampled from
        await wait_for(pilot, lambda: (workdir / "checkpoints/model.pt").exists() and app.run_state == "idle",
                       "the save")
        await complete(pilot, "the cat")
        await wait_for(pilot, lambda: len(stored(workdir)) == 1, "the stored completion")
        device = app.session.trainer.device
    [record] = stored(workdir)
    assert record.seed >= 0 and record.step == 0 and record.checkpoint == "checkpoints/model.pt"
    assert record.settings == SamplingSettings(max_new_tokens=60, temperature=1.0, seed=record.seed)
    checkpoint = load_checkpoint(workdir / record.checkpoint)
    assert checkpoint.step == record.step
    model = checkpoint.build_model(device).eval()
    again = "".join(p.text for p in generate(model, checkpoint.tokenizer, record.prompt, record.settings))
    assert again == record.text and len(again) == 60


async def test_corrupt_files_warn_once_are_kept_and_appended_to_safely(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 5\n")
    file, history = workdir / FILE, workdir / HISTORY
    file.parent.mkdir()
    good = new_completion("the", " cat", 0, SamplingSettings(seed=1), "checkpoints/model.pt")
    file.write_bytes(json.dumps(good.to_record()).encode() + b"\n\x00\xff garbage\n" + b'{"v": 1, "prompt": "cu')
    history.write_bytes(b'{"prompt": "the dog"}\n{"prompt": ')
    before, history_before = file.read_bytes(), history.read_bytes()
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: messages.of(EarlierLoaded) and len(messages.notices("warning")) >= 2,
                       "the warnings")
        warnings = messages.notices("warning")
        assert len([w for w in warnings if "model.completions.jsonl" in w]) == 1
        assert len([w for w in warnings if HISTORY in w]) == 1
        assert file.read_bytes() == before and history.read_bytes() == history_before
        assert [c.record for c in asked(app)] == [good]
        await complete(pilot, "a")
        await wait_for(pilot, lambda: len(stored(workdir)) == 2, "the new completion")
    assert file.read_bytes().startswith(before + b"\n") and history.read_bytes().startswith(history_before + b"\n")
    assert load_history(history).prompts == ["the dog", "a"]


async def test_only_the_newest_of_a_long_file_are_shown(workdir):
    file = workdir / FILE
    file.parent.mkdir()
    lines = (json.dumps(new_completion(f"p{i}", "t", i, SamplingSettings(seed=i), "x.pt").to_record())
             for i in range(3000))
    file.write_text("\n".join(lines) + "\n")
    app = make_app()
    async with app.run_test() as pilot:
        await files_read(pilot)
        await wait_for(pilot, lambda: len(asked(app)) == EARLIER_SHOWN, "the newest completions")
        assert asked(app)[-1].record.step == 2999 and asked(app)[0].record.step == 3000 - EARLIER_SHOWN
    assert completions_path(workdir / "checkpoints/model.pt") == file


async def test_quitting_while_a_completion_streams_keeps_it_as_escape_would(workdir):
    """Ctrl+Q once lost the completion being written; the prompt alone reached the history."""
    write_settings(workdir, "[sampling]\nmax_new_tokens = 100000\n")
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await files_read(pilot)
        await complete(pilot, "the")
        await wait_for(pilot, lambda: asked(app) and asked(app)[0].text, "the first text")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None, "the app to exit")
        shown = asked(app)[0].text
    [kept] = stored(workdir)
    assert (kept.prompt, kept.ended) == ("the", "cancelled")
    assert kept.text.startswith(shown) and kept.text, "what was written until the quit"


async def test_escape_then_a_key_typed_at_once_leaves_the_prompt_and_acts_as_the_key(workdir):
    """ESC and 4 arrive as one sequence when typed fast (or over SSH): Textual read it as `¢` and
    typed that into the prompt."""
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        prompt = await focus_prompt(pilot)
        await pilot.press(*"the")
        parser = XTermParser()
        keys = [*parser.feed("\x1b4"), *parser.feed("")]  # the bytes the terminal sends, as the app reads them
        assert [(key.key, key.character) for key in keys] == [("alt+4", "4")]
        for key in keys:
            app.post_message(key)
        await wait_for(pilot, lambda: app.current_view == "samples-view", "view 4")
        assert prompt.text == "the" and app.focused is not prompt


async def test_escape_then_a_letter_leaves_the_prompt_and_runs_the_letters_key(workdir):
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        prompt = await focus_prompt(pilot)
        await pilot.press(*"dog")
        app.post_message(events.Key("alt+t", "t"))  # Escape and t, typed at once
        await wait_for(pilot, lambda: app.run_state == "training", "t to start training")
        assert prompt.text == "dog"
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")


async def test_a_long_completion_is_followed_to_its_end_while_it_streams(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 600\nseed = 3\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        completions = app.completions.list
        await complete(pilot, "the")
        await wait_for(pilot, lambda: completions.max_scroll_y > 0, "more text than the pane holds")
        assert completions.scroll_y == completions.max_scroll_y, "at the newest text, not at the start"
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        await pilot.pause()
        assert completions.scroll_y == completions.max_scroll_y


def test_an_empty_prompt_starts_a_function_on_the_built_in_python_corpus():
    python, prose = Corpus.from_text("def f():\n    return 1\n", BUILTIN_NAME), Corpus.from_text("Hello.\n", "mine")
    assert default_prompt(python) == "def " and default_prompt(prose) == ""


async def test_an_empty_prompt_on_the_built_in_corpus_is_completed_from_def(workdir):
    (workdir / "data/input.txt").unlink()  # the built-in corpus: Python's standard library
    write_settings(workdir, "[sampling]\nmax_new_tokens = 20\n")
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        prompt = await focus_prompt(pilot)
        assert "(empty: 'def ')" in prompt.placeholder
        await pilot.press("enter")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        assert asked(app)[0].prompt == "def "
