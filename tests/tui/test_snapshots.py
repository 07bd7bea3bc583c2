"""Snapshots of the main screen and the settings screen (pytest-textual-snapshot).
After an intended change of the look: pytest tests/tui/test_snapshots.py --snapshot-update"""

from __future__ import annotations

import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey
from tui_helpers import fake_lab_record, fake_run_log, make_app, wait_for, wait_loaded, write_settings

from minigpt.plumbing.runs import Sample
from tui.screens.runs import RunsScreen
from tui.screens.settings import SettingsScreen
from tui.views.inspect import InspectView
from tui.views.lab import LabView

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
    await wait_for(pilot, lambda: pilot.app.query_one("#views").active == "samples-view"
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
