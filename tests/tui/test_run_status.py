"""What the app says about the run: a finished run and more time for it, numbers with their
meaning (the uniform guess, memorising, the learning rate), the status bar at 80 columns, the
view bar and the notifications."""

from __future__ import annotations

import math

import pytest
from tui_helpers import finished_run, made_up_loss, make_app, wait_for, wait_loaded

from minigpt.evaluate import memorising
from minigpt.plumbing.config import MAX_ITERS
from minigpt.plumbing.session import extended_budget
from minigpt.trainer import EvalEvent
from tui.app import MAX_TOASTS
from tui.messages import Evaluated
from tui.run_control import EXTRA_SECONDS
from tui.text import fit
from tui.widgets.status_bar import PartsLine, Progress
from tui.widgets.view_bar import ViewLabel


def status_line(app, which: str) -> str:
    return str(app.query_one(f"#{which}", PartsLine).render())


async def test_a_finished_run_says_so_and_plus_trains_it_five_more_minutes(workdir):
    finished_run(workdir, steps=600)
    app = make_app("--max-iters", "600")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.run_state == "finished", "the finished run")
        best, final = app.session.trainer.best_val_loss, made_up_loss(600) + 0.05  # the checkpoint's; the log's last
        assert (app.progress.best_val_loss, app.progress.val_loss) == (best, final)
        figures = status_line(app, "figures")
        assert f"final val {final:.4f}" in figures and f"best {best:.4f}" in figures and "left" not in figures
        await pilot.press("t")  # says how to go on, rather than "pass --time"
        await wait_for(pilot, lambda: any("+ trains it 5 minutes more" in e for e in app.event_log.entries), "the hint")
        assert app.run_state == "finished"

        spent = app.session.trainer.time_spent
        await pilot.press("plus")
        await wait_for(pilot, lambda: app.run_state == "training", "training again")
        config = app.session.trainer.config
        assert config.time_budget == pytest.approx(spent + EXTRA_SECONDS) and config.max_iters == MAX_ITERS
        await wait_for(pilot, lambda: app.session.trainer.step > 600, "steps past the old end")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop: time is left")


def test_more_time_follows_the_rule_of_time_on_resume():
    from minigpt.plumbing.config import TrainConfig

    steps = TrainConfig(max_iters=500)
    assert extended_budget(steps, 40.0, 300.0) == TrainConfig(max_iters=MAX_ITERS, time_budget=340.0)
    timed = TrainConfig(max_iters=MAX_ITERS, time_budget=120.0)
    assert extended_budget(timed, 119.0, 300.0).time_budget == 419.0


async def test_the_loss_to_beat_the_learning_rate_and_the_shape_are_shown(workdir):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        vocab = app.session.trainer.tokenizer.vocab_size
        assert app.chart.scale.uniform_loss == pytest.approx(math.log(vocab))
        assert any(f"ln {vocab} = {math.log(vocab):.2f}" in entry for entry in app.event_log.entries)
        assert f"guess {math.log(vocab):.2f}" in app.chart.border_subtitle
        assert app.run_info.shape == "d_model 32 x 2 layers", "the shape, also when not chosen for a budget"
        await pilot.press("g")
        await wait_for(pilot, lambda: app.chart.show_lr and "lr (right)" in app.chart.border_subtitle, "the lr curve")
        await pilot.press("t")
        await wait_for(pilot, lambda: len(app.chart.train) >= 2, "points")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")
        rates = app.chart.train.column(3)
        assert all(0 < rate <= app.session.trainer.config.lr for rate in rates), "each point has its rate"


def eval_event(step: int, train: float, val: float, flagged: bool) -> EvalEvent:
    return EvalEvent(step, train, val, train / 0.7, val / 0.7, val, "sample", float(step), flagged)


def test_memorising_is_a_gap_that_outgrows_its_smallest():
    assert not memorising(1.50, 1.52, smallest_gap=float("inf")), "the first evaluation has nothing to compare"
    assert not memorising(1.40, 1.48, smallest_gap=0.05), "a gap that the held-out text had from the start"
    assert memorising(1.20, 1.40, smallest_gap=0.02)
    assert not memorising(1.20, 1.25, smallest_gap=0.0), "within noise"


async def test_memorising_is_said_once_and_shown_in_the_status_bar(workdir):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        app.post_message(Evaluated(eval_event(100, 1.5, 1.52, False)))
        app.post_message(Evaluated(eval_event(200, 1.2, 1.45, True)))
        app.post_message(Evaluated(eval_event(300, 1.1, 1.5, True)))
        await wait_for(pilot, lambda: app.progress.step == 0 and app.chart.val and len(app.chart.val) == 3, "evals")
        notes = [entry for entry in app.event_log.entries if "begun to memorise" in entry]
        assert len(notes) == 1 and "step 200" in notes[0]
        app.progress = Progress(step=300, max_iters=1000, loss=1.1, val_loss=1.5, memorising=True)
        await wait_for(pilot, lambda: "memorising" in status_line(app, "figures"), "the flag")


def test_a_line_keeps_its_most_important_parts():
    parts = [(0, "1:23/10:00"), (2, "step 1,234"), (0, "loss 2.1"), (3, "40k tok/s"), (1, "left 8:37")]
    assert fit(parts, 80) == "1:23/10:00  step 1,234  loss 2.1  40k tok/s  left 8:37"
    assert fit(parts, 40) == "1:23/10:00  loss 2.1  left 8:37"
    assert fit(parts, 22) == "1:23/10:00  loss 2.1"
    assert fit([(0, "a very long single part")], 10) == "a very lo…"


async def test_at_80_columns_the_status_bar_keeps_what_the_checkpoint_holds(workdir):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_info.saved == "saved, step 0", "the save")
        await wait_for(pilot, lambda: "checkpoints/model.pt (saved, step 0)" in status_line(app, "info"), "the line")
        assert "…" not in status_line(app, "info")


async def test_the_view_bar_names_every_view_with_its_key_and_a_click_switches(workdir):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        labels = {label.tab.view: str(label.render()) for label in app.query(ViewLabel)}
        assert labels == {"train-view": "1 Train", "log-view": "2 Log", "inspect-view": "3 Inspect",
                          "samples-view": "4 Samples", "lab-view": "5 Lab", "chat-view": "m Chat"}
        await pilot.click("#tab-log-view")
        await wait_for(pilot, lambda: app.current_view == "log-view", "the Log")
        assert app.query_one("#tab-log-view").has_class("-current")


async def test_notifications_stack_no_higher_than_a_few_and_all_go_to_the_log(workdir):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        for n in range(6):
            app.notify(f"note {n}", timeout=60)
        await wait_for(pilot, lambda: all(f"note {n}" in app.event_log.entries for n in range(6)), "the Log")
        assert [n.message for n in app._notifications][-MAX_TOASTS:] == [f"note {n}" for n in range(3, 6)]
        assert len(app._notifications) == MAX_TOASTS
