"""Pilot tests of the Inspect view (key 3): what it inspects, its keys, and its refresh while training."""

from __future__ import annotations

from itertools import islice

import pytest
from textual.widgets import Label
from textual.widgets._footer import FooterKey
from tui_helpers import complete, completions_ended, make_app, wait_for, wait_loaded, write_settings

from minigpt.sampling import generate
from tui.views.inspect import InspectView
from tui.widgets.attention_map import AttentionGrid, AttentionMap
from tui.widgets.logit_lens import LogitLens
from tui.widgets.probability_bars import ProbabilityBars
from tui.widgets.token_strip import TokenStrip


def view(app) -> InspectView:
    return app.query_one(InspectView)


def title(app) -> str:
    return str(app.query_one("#inspect-title", Label).render())


async def inspected(pilot, after=None) -> None:
    """Wait for the view to show an inspection (other than `after`)."""
    await wait_for(pilot, lambda: view(pilot.app).inspected is not None and view(pilot.app).inspected is not after,
                   "the inspection")


async def open_view(pilot) -> None:
    """Wait for the model, press 3 and wait for the view to show what it inspects."""
    await wait_loaded(pilot)
    await pilot.press("3")
    await inspected(pilot)


async def type_prompt(pilot, text: str) -> None:
    """Type text into the prompt without completing it, then leave the prompt."""
    field = pilot.app.query_one("#prompt")
    await pilot.press("slash")
    await wait_for(pilot, lambda: pilot.app.focused is field, "the prompt's focus")
    await pilot.press(*text, "escape")
    await wait_for(pilot, lambda: pilot.app.focused is not field, "the prompt to be left")


async def test_key_3_generates_from_the_prompt_and_shows_drawn_what_the_sampler_draws(workdir):
    write_settings(workdir, "[sampling]\nseed = 5\ntemperature = 1.2\ntop_k = 6\nstop = []\n")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        await type_prompt(pilot, "the ")
        await pilot.press("3")
        await inspected(pilot)
        assert app.query_one("#views").active == "inspect-view" and app.focused is view(app)
        inspection = view(app).inspected.inspection
        trainer = app.session.trainer
        sampled = [p.token for p in islice(generate(trainer.snapshot(), trainer.tokenizer, "the ", app.sampling),
                                           len(inspection.steps))]
        assert [s.token for s in inspection.steps] == sampled
        assert inspection.tokens[:4] == trainer.tokenizer.encode("the ")
        assert "generated from 'the '" in title(app) and "seed 5" in title(app)
        bars = app.query_one(ProbabilityBars).bars
        assert sum(b.drawn for b in bars) == 1
        assert sum(b.processed > 0 for b in bars) == 6  # top-k 6: the others are shown removed
        lens = app.query_one(LogitLens).columns  # at the first step: the stream before it, through each sublayer
        assert [c.stage for c in lens] == ["embeddings", "attention 1", "mlp 1", "attention 2", "mlp 2"]
        step = inspection.steps[0]
        assert lens[-1].drawn.probability == pytest.approx(step.raw, abs=1e-6)  # the last stage is the output
        assert all(c.drawn.label == app.query_one(InspectView)._label(step.token) for c in lens)
        assert [p.drawn for p in lens[-1].predictions] == [p.label == lens[-1].drawn.label
                                                           for p in lens[-1].predictions]


async def test_arrows_step_through_the_text_and_the_cursor_follows(workdir):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        steps = view(app).inspected.inspection.steps
        assert len(steps) > 3 and title(app).startswith(f"token 1/{len(steps)}")
        strip = app.query_one("#inspect-text", TokenStrip)
        assert strip.strip.cursor == steps[0].position
        await pilot.press("right", "right")
        await wait_for(pilot, lambda: view(app).step == 2, "two steps")
        assert title(app).startswith(f"token 3/{len(steps)}") and strip.strip.cursor == steps[2].position
        await pilot.press("left")
        await wait_for(pilot, lambda: view(app).step == 1, "a step back")
        await pilot.press("end")
        await wait_for(pilot, lambda: view(app).step == len(steps) - 1, "the last step")
        await pilot.press("right")  # stays on the last
        await pilot.press("home")
        await wait_for(pilot, lambda: view(app).step == 0, "the first step")
        await pilot.press("left")
        assert view(app).step == 0
        drawn = [b for b in app.query_one(ProbabilityBars).bars if b.drawn]
        assert len(drawn) == 1 and drawn[0].raw == steps[0].raw


async def test_layer_and_head_keys_switch_the_attention_shown(workdir):
    app = make_app()  # the tiny preset: 2 layers of 2 heads
    async with app.run_test(size=(120, 40)) as pilot:
        await open_view(pilot)
        await pilot.press("end")
        box = app.query_one("#inspect-attention")
        attention_map = app.query_one(AttentionMap)
        assert "layer 1/2 · head 1/2" in box.border_title
        first = attention_map.data
        assert len(first.rows) == view(app).inspected.inspection.steps[-1].position  # every query up to this one
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: "layer 2/2" in box.border_title, "the next layer")
        await pilot.press("h")
        await wait_for(pilot, lambda: "head 2/2" in box.border_title, "the next head")
        await pilot.press("h")
        await wait_for(pilot, lambda: "heads averaged" in box.border_title, "the average")
        await pilot.press("h")
        await wait_for(pilot, lambda: app.query_one(AttentionGrid).display, "the grid")
        assert not attention_map.display
        grid = app.query_one(AttentionGrid).maps
        assert [[m.title for m in layer] for layer in grid] == [["L1 H1", "L1 H2"], ["L2 H1", "L2 H2"]]
        await pilot.press("h", "left_square_bracket")
        await wait_for(pilot, lambda: "layer 1/2 · head 1/2" in box.border_title and attention_map.display, "back")


async def test_a_model_without_attention_is_inspected_and_the_view_says_it_has_none(workdir):
    app = make_app("--no-attention", "--from-scratch")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        box = app.query_one("#inspect-attention")
        assert "no attention layers" in box.border_title and app.query_one(AttentionMap).data is None
        assert [c.stage for c in app.query_one(LogitLens).columns] == ["embeddings", "mlp 1", "mlp 2"]
        await pilot.press("right_square_bracket", "h", "h", "h", "right")  # layers and heads: nothing to switch
        await wait_for(pilot, lambda: view(app).step == 1, "a step")
        assert "no attention layers" in box.border_title and not app.query_one(AttentionGrid).display


async def test_key_3_inspects_the_last_completion_when_no_prompt_is_written(workdir):
    write_settings(workdir, "[sampling]\nseed = 2\nmax_new_tokens = 40\nstop = []\n")  # never an empty text
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        await complete(pilot, "the")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        text = app.completions.list.last_completion.text
        await pilot.press("escape", "3")
        await inspected(pilot)
        inspection = view(app).inspected.inspection
        tokenizer = app.session.trainer.tokenizer
        assert inspection.tokens == tokenizer.encode("the" + text)[-app.session.trainer.model_config.block_size:]
        assert "completion of 'the'" in title(app)


async def test_a_prompt_the_model_cannot_read_is_explained(workdir):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        await type_prompt(pilot, "ZZ")
        await pilot.press("3")
        await wait_for(pilot, lambda: "Cannot inspect" in title(app), "the explanation")
        assert "'Z'" in title(app) and view(app).inspected is None


async def test_while_training_the_view_refreshes_only_while_on_screen(workdir, monkeypatch):
    monkeypatch.setattr("tui.views.inspect.REFRESH_SECONDS", 0.2)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_view(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: view(app).inspected.weights_step > 0, "a refresh on newer weights")
        assert f"weights of step {view(app).inspected.weights_step:,}," in view(app).inspected.source
        await pilot.press("1")
        await wait_for(pilot, lambda: not view(app).is_on_screen, "the view to be hidden")
        await wait_for(pilot, lambda: not (view(app)._worker and view(app)._worker.is_running), "the last refresh")
        shown = view(app).inspected
        view(app)._refresh_while_training()  # what the timer calls: nothing, while hidden
        assert view(app)._worker is None or not view(app)._worker.is_running
        assert view(app).inspected is shown
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")


def footer_end(app, descriptions: set[str]) -> int:
    """The column where the footer's keys end (they must end before the palette's key begins)."""
    keys = {k.description: k for k in app.query(FooterKey) if k.description != "palette"}
    assert descriptions <= set(keys)
    return max(k.region.right for k in keys.values())


def palette_start(app) -> int:
    return next(k.region.x for k in app.query(FooterKey) if k.description == "palette")


async def test_the_footer_fits_at_80_columns_and_the_palette_has_inspect(workdir):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot)
        await wait_for(pilot, lambda: any(k.action == "step(-1)" for k in app.query(FooterKey)), "the view's keys")
        assert footer_end(app, {"Step", "Head", "Train", "Help", "Quit"}) <= palette_start(app)
        # Training adds Stop: the view's keys take no more room than the training view's.
        await pilot.press("t")
        await wait_for(pilot, lambda: any(k.action == "stop_training" for k in app.query(FooterKey)), "Stop")
        inspecting = footer_end(app, {"Step", "Head", "Pause", "Stop", "Help"})
        await pilot.press("1")
        await wait_for(pilot, lambda: any(k.description == "Log/lin" for k in app.query(FooterKey)), "view 1's keys")
        assert inspecting <= footer_end(app, {"Log/lin", "Pause", "Stop", "Help"})
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Inspect the model on the prompt, or else the last completion", "Step forward through the text",
                "Next attention head, then the average over heads, then every layer x head"} <= titles
