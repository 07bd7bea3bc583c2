"""Snapshots of every view, the help and settings screens and a finished run
(pytest-textual-snapshot). At 80x24 each view's key must be on the screen itself.
After an intended change of the look: pytest tests/tui/test_snapshots.py --snapshot-update -k NAME"""

from __future__ import annotations

import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey
from tui_helpers import (
    fake_lab_record,
    fake_run_log,
    finished_run,
    made_up_loss,
    make_app,
    wait_for,
    wait_loaded,
    write_settings,
)

from minigpt.plumbing.config import MAX_ITERS
from minigpt.plumbing.conversations import append_turn, model_turn, user_turn
from minigpt.plumbing.runs import Sample
from minigpt.plumbing.settings import SamplingSettings
from minigpt.trainer import EvalEvent
from tui.screens.help import HelpScreen
from tui.screens.runs import RunsScreen
from tui.screens.settings import SettingsScreen
from tui.views.inspect import InspectView
from tui.views.lab import LabView
from tui.widgets.chat_turn import TurnCard
from tui.widgets.status_bar import Progress

SAMPLES = [Sample(100, 4.1706, "ta  eh\nTiwlaa i e ,sdrn\nem  rhoe tnaaee"),
           Sample(500, 2.4312, "Thas the wer thy lome,\nAnd sall the dot he his hance."),
           Sample(1000, 1.8027, "ROMEO:\nWhat say the king? I will not stay the night,\nFor he is gone.")]


def train_key_shown(app) -> bool:
    """The footer has been rebuilt for the idle state (Train enabled)."""
    return any(key.action == "start_training" and not key.has_class("-disabled") for key in app.query(FooterKey))


async def loaded(pilot) -> None:
    await wait_loaded(pilot)
    await wait_for(pilot, lambda: train_key_shown(pilot.app), "the footer of the idle state")


async def settings_open(pilot) -> None:
    await loaded(pilot)
    await pilot.press("comma")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen) and pilot.app.screen.query(Input),
                   "the settings screen")
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would make the picture depend on timing


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_main_screen(workdir, snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=loaded)


def test_settings_screen(workdir, snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settings_open)


async def inspect_open(pilot) -> None:
    """The Inspect view on a generation from the empty prompt, five tokens in."""
    await loaded(pilot)
    await pilot.press("3")
    view = pilot.app.query_one(InspectView)
    await wait_for(pilot, lambda: view.inspected is not None, "the inspection")
    await pilot.press(*["right"] * 5)
    await wait_for(pilot, lambda: view.step == 5 and any(k.action == "step(-1)" for k in pilot.app.query(FooterKey)),
                   "the fifth step and the view's footer")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_inspect_view(workdir, snap_compare, size):
    write_settings(workdir, "[sampling]\nseed = 3\ntop_k = 8\n")  # a fixed draw, and removed tokens to grey
    assert snap_compare(make_app(), terminal_size=size, run_before=inspect_open)
async def samples_view(pilot) -> None:
    await loaded(pilot)
    pilot.app.samples.add_samples(SAMPLES)
    await pilot.press("4", "left")  # the first sample beside the one before the latest
    await wait_for(pilot, lambda: pilot.app.current_view == "samples-view"
                   and pilot.app.samples.right == 1, "the samples view")


async def runs_picker(pilot) -> None:
    await loaded(pilot)
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.runs, "the runs")
    await pilot.press("space")


async def runs_overlaid(pilot) -> None:
    await runs_picker(pilot)
    await pilot.press("down", "space", "enter", "b")
    await wait_for(pilot, lambda: len(pilot.app.chart.overlays) == 2 and pilot.app.chart.y_axis == "bpc",
                   "the overlays")


def two_runs(workdir) -> None:
    fake_run_log(workdir / "checkpoints/small.jsonl", 64, list(range(100, 1100, 100)))
    fake_run_log(workdir / "checkpoints/big.jsonl", 256, list(range(100, 700, 100)), tokenizer="bpe")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_samples_view(workdir, snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=samples_view)


def test_runs_picker(workdir, snap_compare):
    two_runs(workdir)
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=runs_picker)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_runs_overlaid_on_the_chart(workdir, snap_compare, size):
    two_runs(workdir)
    assert snap_compare(make_app(), terminal_size=size, run_before=runs_overlaid)


async def training(pilot) -> None:
    """The training view of a 10-minute run, 2:24 in (the figures made up, the same every time)."""
    await loaded(pilot)
    app = pilot.app
    app.chart.add_train_losses([(step, step * 0.1, made_up_loss(step), 3e-3) for step in range(10, 1441, 10)])
    for step in range(100, 1441, 100):
        app.chart.add_val_loss(step, step * 0.1, made_up_loss(step) + 0.05)
    val = made_up_loss(1400) + 0.05
    app.completions.add_sample(EvalEvent(1400, val - 0.05, val, val / 0.69, val / 0.69, val, SAMPLES[2].text, 140.0))
    app.progress = Progress(1440, MAX_ITERS, loss=made_up_loss(1440), val_loss=made_up_loss(1400) + 0.05,
                            best_val_loss=made_up_loss(1400) + 0.05, tokens_per_sec=24_300, eta=456.0,
                            time_budget=600.0, time_used=144.0)
    app.run_state = "training"
    app.chart.replot()
    await wait_for(pilot, lambda: any(k.action == "stop_training" for k in app.query(FooterKey)), "the keys")


def test_training_view(workdir, snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=training)


async def log_view(pilot) -> None:
    await loaded(pilot)
    await pilot.press("2")
    await wait_for(pilot, lambda: pilot.app.current_view == "log-view" and pilot.app.event_log.lines, "the Log")


def test_log_view(workdir, snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=log_view)


async def help_screen(pilot) -> None:
    await loaded(pilot)
    await pilot.press("question_mark")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help screen")


def test_help_screen(workdir, snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=help_screen)


async def finished(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.run_state == "finished", "the finished run")
    await wait_for(pilot, lambda: any(k.action == "add_time" for k in pilot.app.query(FooterKey)), "the keys")
    pilot.app.clear_notifications()  # "Loaded ...": the picture is of what stays


def test_a_finished_run(workdir, snap_compare):
    finished_run(workdir, steps=600)
    assert snap_compare(make_app("--max-iters", "600"), terminal_size=(80, 24), run_before=finished)


PLAY = "ROMEO:\nIs the day so young?\n\nJULIET:\nBut new struck nine. Good night.\n\nNURSE:\nMadam! Ay.\n\n" * 40


def a_conversation(workdir) -> None:
    """A play to train on, and a conversation with its model kept from an earlier launch."""
    (workdir / "data" / "input.txt").write_text(PLAY)
    path = workdir / "checkpoints" / "model.chat.jsonl"
    turns = [("ROMEO", "Is the day so young?"), ("JULIET", "But new struck nine."), ("ROMEO", "Ay."),
             ("JULIET", "Good night.")]
    for name, text in turns:
        if name == "ROMEO":
            append_turn(path, user_turn("c0ffee00", "ROMEO:\n", text))
            read = f"ROMEO:\n{text}\n\nJULIET:\n"  # what a 32-token model reads
        else:
            append_turn(path, model_turn("c0ffee00", "JULIET:\n", text, read, 120, SamplingSettings(seed=1),
                                         "checkpoints/model.pt"))


async def chat_open(pilot) -> None:
    await loaded(pilot)
    await pilot.press("m")
    chat = pilot.app.chat
    await wait_for(pilot, lambda: len(pilot.app.query(TurnCard)) == 4 and pilot.app.focused is chat.input,
                   "the conversation read back")
    chat.input.cursor_blink = False


def test_chat_view(workdir, snap_compare):
    a_conversation(workdir)
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=chat_open)


async def lab_view(pilot) -> None:
    """The Lab view on a finished experiment: its figures, curves, conclusion and a sample."""
    await loaded(pilot)
    await pilot.press("5")
    view = pilot.app.query_one(LabView)
    await wait_for(pilot, lambda: view.shown is not None and view.shown.record is not None
                   and any(k.action == "run" for k in pilot.app.query(FooterKey)), "the recorded experiment")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_lab_view(workdir, snap_compare, size):
    fake_lab_record(workdir)
    assert snap_compare(make_app(), terminal_size=size, run_before=lab_view)
