"""Pilot tests of the Lab view (key 5): picking an experiment, running and resuming it in the app's one
training worker, only one thing training at a time, and a variant opened in the Inspect view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from textual.widgets import OptionList
from tui_helpers import Messages, fake_lab_record, make_app, wait_for, wait_loaded

from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.experiments import BUILTINS, Experiment, Variant
from minigpt.plumbing.lab import LabRun, VariantTraining
from minigpt.plumbing.lab_record import Budget, load_record
from minigpt.trainer import StepEvent
from tui.messages import LabUpdate
from tui.screens.experiments import ExperimentsScreen
from tui.views.lab import LabView
from tui.widgets.lab_chart import LabChart
from tui.widgets.variant_table import VariantTable

TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "block_size": 16, "batch_size": 2, "eval_iters": 1,
        "dtype": "float32", "device": "cpu"}
MINE = Experiment("mine", "Narrow or wide?", (Variant("narrow", {"d_model": 8}), Variant("wide", {"d_model": 24})),
                  compare="scale", source="mine.toml")


@pytest.fixture(autouse=True)
def one_thread():
    """Models this small run faster on one thread, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def begun(workdir: Path, steps: int = 30) -> None:
    """A learner's experiment run with minigpt-lab and stopped in its first variant."""
    lab = LabRun(MINE, Budget(steps=steps), workdir / "checkpoints/lab", workdir / "data/input.txt", TINY)
    for event in lab.run():
        if isinstance(event, VariantTraining) and isinstance(event.event, StepEvent) and event.event.step == 3:
            lab.request_stop()


def rows(app) -> dict[str, str]:
    """Each variant's state, as the table shows it."""
    table = app.query_one(VariantTable)
    return {name: row.state for name, row in table.rows_by_name.items()}


async def open_lab(pilot) -> LabView:
    await wait_loaded(pilot)
    await pilot.press("5")
    view = pilot.app.query_one(LabView)
    await wait_for(pilot, lambda: pilot.app.current_view == "lab-view" and view.shown, "the Lab view")
    return view


async def pick(pilot, name: str) -> None:
    view = pilot.app.query_one(LabView)
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ExperimentsScreen)
                   and isinstance(pilot.app.focused, OptionList), "the experiments picker")
    names = [e.name for e in pilot.app.screen.experiments]
    await pilot.press(*["down"] * (names.index(name) - names.index(view.shown.experiment.name)), "enter")
    await wait_for(pilot, lambda: view.shown.experiment.name == name, f"{name} shown")


async def test_the_lab_view_shows_each_experiment_with_its_question_and_variants(workdir):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await open_lab(pilot)
        assert view.shown.experiment is BUILTINS["attention-and-mlp"]
        assert "Why does a Transformer need both attention and the MLP?" in str(app.query_one("#lab-title").render())
        assert rows(app) == dict.fromkeys(["full", "no-mlp", "no-attention", "neither"], "waiting")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen), "the experiments picker")
        assert [e.name for e in app.screen.experiments] == list(BUILTINS)
        await pilot.press("escape")
        await pick(pilot, "width")
        assert list(rows(app)) == ["width-32", "width-64", "width-128", "width-256"]
        assert view.query_one(VariantTable).border_title == "1:00 per variant"
        await pilot.press("minus")
        assert view.query_one(VariantTable).border_title == "0:30 per variant"
        await pilot.press("plus", "plus")
        assert view.seconds == 120


async def test_an_experiment_whose_keys_are_missing_says_what_it_needs(workdir):
    messages = Messages()
    app = make_app()
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await open_lab(pilot)
        await pick(pilot, "then-and-now")
        if not BUILTINS["then-and-now"].missing_keys():
            pytest.skip("then-and-now runs: its keys have landed")
        await pilot.press("r")
        await wait_for(pilot, lambda: messages.notices("warning"), "the warning")
        assert "then-and-now needs the config keys" in messages.notices("warning")[0]
        assert app.run_state == "idle"


async def test_an_experiment_begun_with_minigpt_lab_resumes_and_concludes_in_the_app(workdir):
    begun(workdir)
    messages = Messages()
    app = make_app()
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        view = await open_lab(pilot)
        await wait_for(pilot, lambda: "mine" in view.experiments, "the experiments run here")
        await pick(pilot, "mine")
        assert rows(app) == {"narrow": "part-way", "wide": "waiting"}
        assert "r resumes" in view.query_one(VariantTable).border_title
        await pilot.press("r")
        await wait_for(pilot, lambda: not view.running and rows(app) == {"narrow": "done", "wide": "done"},
                       "the experiment to end")
        assert messages.of(LabUpdate)  # it ran in the app
        conclusion = str(app.query_one("#lab-conclusion").render())
        assert "bits/char" in conclusion and ("did best" in conclusion or "within the noise" in conclusion)
        assert app.run_state == "idle"
        assert load_record(workdir / "checkpoints/lab/mine").done == ("narrow", "wide")


async def test_only_one_thing_trains_at_a_time_and_the_app_says_so(workdir):
    begun(workdir, steps=100_000)
    messages = Messages()
    app = make_app()
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        view = await open_lab(pilot)
        await wait_for(pilot, lambda: "mine" in view.experiments, "the experiments run here")
        await pick(pilot, "mine")
        await pilot.press("1", "t")  # the app's own model trains...
        await wait_for(pilot, lambda: app.run_state == "training", "training")
        await pilot.press("5", "r")  # ...so the Lab waits
        await wait_for(pilot, lambda: messages.notices("warning"), "the warning")
        assert "The model is training, and only one thing trains at a time" in messages.notices("warning")[0]
        assert not view.running
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")

        await pilot.press("r")  # now the Lab trains, and t pauses it rather than training the app's model
        await wait_for(pilot, lambda: view.running and "Lab mine" in app.load_message, "the experiment")
        step = app.session.trainer.step
        await pilot.press("t")
        await wait_for(pilot, lambda: app.run_state == "paused", "the pause")
        assert app.session.trainer.step == step

        def saves() -> list[str]:
            return [entry for entry in app.event_log.entries if entry.startswith("lab: saved narrow at step")]

        saved_before = len(saves())
        await pilot.press("s")  # saved by the paused worker, between two of the variant's steps
        await wait_for(pilot, lambda: len(saves()) > saved_before, "the save")
        on_disk = load_checkpoint(workdir / "checkpoints/lab/mine/narrow.pt").step
        assert saves()[-1] == f"lab: saved narrow at step {on_disk:,}"
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle" and not view.running, "the stop")
        assert rows(app)["narrow"] == "part-way"
        record = load_record(workdir / "checkpoints/lab/mine")
        assert record.done == () and record.started == ("narrow",)


async def test_quitting_while_the_lab_trains_saves_the_variant_in_progress(workdir):
    begun(workdir, steps=100_000)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await open_lab(pilot)
        await wait_for(pilot, lambda: "mine" in view.experiments, "the experiments run here")
        await pick(pilot, "mine")
        await pilot.press("r")
        await wait_for(pilot, lambda: view.running and app.lab.status, "the experiment's first steps")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, "the app to quit")
    log = [json.loads(line) for line in (workdir / "checkpoints/lab/mine/narrow.jsonl").read_text().splitlines()]
    assert load_checkpoint(workdir / "checkpoints/lab/mine/narrow.pt").step > 3  # saved beyond where minigpt-lab was
    assert [line["resumed_from"] for line in log if line["event"] == "run"] == [0, 3]


async def test_a_variant_opens_in_the_inspect_view(workdir):
    begun(workdir)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await open_lab(pilot)
        await wait_for(pilot, lambda: "mine" in view.experiments, "the experiments run here")
        await pick(pilot, "mine")
        await pilot.press("i")
        await wait_for(pilot, lambda: app.inspector.inspected is not None and app.inspector.model_name, "the variant")
        assert app.current_view == "inspect-view"
        assert app.inspector.model_name == "mine/narrow" and app.inspector.session is not app.session
        assert app.inspector.session.trainer.model_config.d_model == 8  # the variant's own model
        assert str(app.query_one("#inspect-title").render()).startswith("mine/narrow · token 1/")
        await pilot.press("3")  # back to the app's own model
        assert app.inspector.model_name == "" and app.inspector.session is app.session


async def test_a_finished_experiment_shows_its_figures_curves_and_conclusion(workdir):
    fake_lab_record(workdir)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await open_lab(pilot)
        await wait_for(pilot, lambda: view.shown.record is not None, "the recorded run")
        assert rows(app) == dict.fromkeys(["full", "no-mlp", "no-attention", "neither"], "done")
        table = app.query_one(VariantTable)
        assert table.rows_by_name["no-attention"].val_bpc == pytest.approx(2.53)
        assert table.rows_by_name["full"].tokens == 300 * 768
        conclusion = str(app.query_one("#lab-conclusion").render())
        assert "The model without attention is 0.61 bits/char worse than the full model: it sees only the " \
               "current token." in conclusion
        assert "full writes: ROMEO: the full model wrote this at 300" in conclusion
        await pilot.press("down")
        await wait_for(pilot, lambda: "no-mlp writes:" in str(app.query_one("#lab-conclusion").render()),
                       "the next variant's sample")


@pytest.mark.parametrize("size, curves", [((80, 24), False), ((120, 40), True)])
async def test_the_conclusion_is_read_whole_and_the_curves_only_where_there_is_room(workdir, size, curves):
    """On a short terminal the finished experiment's chart gives its room to the conclusion: squeezed
    under it, the curves were a single flat row."""
    fake_lab_record(workdir)
    app = make_app()
    async with app.run_test(size=size) as pilot:
        view = await open_lab(pilot)
        await wait_for(pilot, lambda: view.shown.record is not None, "the recorded run")
        await pilot.pause()
        conclusion = app.query_one("#lab-conclusion")
        assert "bits/char worse" in str(conclusion.render())
        assert conclusion.region.height == conclusion.virtual_size.height, "the conclusion is cut"
        chart = app.query_one(LabChart)
        assert chart.display == curves
        if curves:
            assert chart.region.height >= 10
