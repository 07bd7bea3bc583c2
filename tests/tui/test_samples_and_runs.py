"""Pilot tests for watching it learn (the Samples view, key 4) and runs side by
side (the chart's axes, a and b, and the runs picker, r), and the metrics log
the app keeps."""

from __future__ import annotations

from tui_helpers import fake_run_log, make_app, wait_for, wait_loaded

from minigpt.plumbing.runs import Sample, load_runs
from tui.screens.runs import RunsScreen
from tui.views.samples import SamplesView
from tui.widgets.loss_chart import LossChart
from tui.widgets.sample_timeline import SampleCard


def samples_shown(app) -> tuple[str, str]:
    """The border titles of the left and right samples."""
    return tuple(app.query_one(f"#sample-{side}", SampleCard).border_title for side in ("left", "right"))


async def open_picker(pilot) -> None:
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.runs, "the runs picker")


async def train_to(pilot, samples: int) -> None:
    app = pilot.app
    await pilot.press("t")
    try:
        await wait_for(pilot, lambda: len(app.samples.samples) >= samples, f"{samples} samples")
    except AssertionError as timeout:  # say how far training got: a hang, or a slow machine?
        raise AssertionError(f"{timeout}; state {app.run_state}, step {app.session.trainer.step}, "
                             f"{len(app.samples.samples)} samples") from None
    await pilot.press("x")
    await wait_for(pilot, lambda: app.run_state == "idle", "the stop")


async def test_the_samples_view_steps_through_the_evaluations(workdir):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        view = app.query_one(SamplesView)
        view.add_samples([Sample(step, 4.0 - step / 100, f"text at {step}") for step in (20, 40, 60, 80)])
        await pilot.press("4")
        await wait_for(pilot, lambda: app.current_view == "samples-view" and app.focused is view,
                       "the samples view")
        assert (view.left, view.right, view.moving) == (0, 3, "right")  # the first beside the latest
        assert samples_shown(app) == ("step 20 · val 3.8000 · 1 of 4", "step 80 · val 3.2000 · 4 of 4")

        await pilot.press("left")
        assert view.right == 2 and samples_shown(app)[1].startswith("step 60 ·")
        assert "text at 60" in str(app.query_one("#sample-right", SampleCard).render())
        await pilot.press("p", "right")  # pin the right side: the left one moves now
        assert (view.left, view.right) == (1, 2)
        await pilot.press("end", "right")  # the latest, and no further
        assert view.left == 3
        await pilot.press("home", "left")  # the first, and no further
        assert view.left == 0
        assert view.query_one("#sample-left").has_class("-moving")
        assert not view.query_one("#sample-right").has_class("-moving")


async def test_training_samples_reach_the_view_and_the_log(workdir):
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await train_to(pilot, 2)
        shown = [(s.step, s.text) for s in app.samples.samples]
        assert [step for step, _ in shown][:2] == [0, 20], "the untrained model's noise first, then each evaluation's"
    # The app kept the run's log, as minigpt-train does: a run line, then every evaluation with its sample.
    (run,), warnings = load_runs(workdir / "checkpoints")
    assert warnings == [] and run.name == "model"
    assert run.info["parameters"] == app.session.trainer.num_parameters
    assert [(s.step, s.text) for s in run.samples()] == shown


async def test_the_moving_side_follows_new_samples_only_from_the_latest(workdir):
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        view = app.query_one(SamplesView)
        view.add_samples([Sample(step, 3.0, f"text {step}") for step in (10, 20)])
        assert (view.left, view.right) == (0, 1)
        view.add_samples([Sample(30, 2.0, "text 30")])
        assert view.right == 2  # at the latest: it follows
        view.action_move(-1)
        view.add_samples([Sample(40, 1.0, "text 40")])
        assert view.right == 1  # the user stepped back: it stays


async def test_a_resumed_run_shows_its_earlier_samples_and_curve(workdir):
    first = make_app()
    async with first.run_test() as pilot:
        await wait_loaded(pilot)
        await train_to(pilot, 2)
        trained = [(s.step, s.text) for s in first.samples.samples]
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: app.samples.samples, "the samples from the log")
        assert [(s.step, s.text) for s in app.samples.samples] == trained
        chart = app.query_one(LossChart)
        assert [step for step, _, _ in chart.val.points] == [step for step, _ in trained]
        assert len(chart.train) > 0


async def test_a_damaged_log_is_a_warning_and_the_app_goes_on(workdir):
    first = make_app()
    async with first.run_test() as pilot:
        await wait_loaded(pilot)
        await train_to(pilot, 1)
    log = workdir / "checkpoints/model.jsonl"
    log.write_text(log.read_text() + '{"event": "eval", "st')
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: app.samples.samples, "the samples from the log")
        assert any("cut short (half-written); line skipped" in line for line in app.event_log.entries)


async def test_the_chart_axes_switch_and_other_runs_are_overlaid(workdir):
    fake_run_log(workdir / "checkpoints/small.jsonl", 64, [100, 200, 300])
    fake_run_log(workdir / "checkpoints/big.jsonl", 256, [100, 200], tokenizer="bpe")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        chart = app.query_one(LossChart)
        for axis in ("tokens", "time", "step"):
            await pilot.press("a")
            await wait_for(pilot, lambda axis=axis: chart.x_axis == axis, f"the {axis} axis")
        await pilot.press("b")
        await wait_for(pilot, lambda: chart.y_axis == "bpc" and chart.border_title == "bits/char by step", "bits")

        await open_picker(pilot)
        assert [run.name for run in app.screen.runs] == ["big", "small"]  # not this run's own log
        await pilot.press("down", "space", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen), "the picker to close")
        assert [run.name for run in chart.overlays] == ["small"]
        drawn = chart.plt.uncolorize(chart.plt.build())
        assert "small (0.06M d64x2, char)" in drawn

        await open_picker(pilot)
        await pilot.press("space", "escape")  # ticks big, then cancels: the chart stays as it was
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen), "the picker to close")
        assert [run.name for run in chart.overlays] == ["small"]

        await open_picker(pilot)
        await pilot.press("space", "enter")  # small stays ticked; big too
        await wait_for(pilot, lambda: [run.name for run in chart.overlays] == ["big", "small"], "two overlays")
        drawn = chart.plt.uncolorize(chart.plt.build())
        assert "big (0.26M d256x2, bpe 512)" in drawn and "small (" in drawn


async def test_the_runs_picker_says_when_there_are_no_other_runs(workdir):
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and "No other runs" in str(app.screen.query_one("#runs-note").render()), "the note")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen), "the picker to close")
        assert app.query_one(LossChart).overlays == []
