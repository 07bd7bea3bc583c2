"""The widgets and helpers on their own, without a model."""

from __future__ import annotations

import gc
import math
import random
import weakref
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import Static
from textual.widgets._footer import FooterKey
from tui_helpers import wait_for

from minigpt.plumbing.runlog import LOG_EVERY
from minigpt.plumbing.terminal import format_seconds, printable
from tui.preferences import read_keymap, read_theme, with_theme
from tui.text import TAB, format_count, one_line
from tui.widgets.chart_series import DownsampledSeries
from tui.widgets.completion_list import (
    LONGEST_PARAGRAPH,
    MAX_COMPLETIONS,
    PARAGRAPH_CHARS,
    Completion,
    CompletionList,
)
from tui.widgets.footer import AppFooter
from tui.widgets.live_chart import CAPACITY
from tui.widgets.loss_chart import LossChart


class WidgetApp(App[None]):
    def __init__(self, *widgets) -> None:
        super().__init__()
        self.widgets = widgets

    def compose(self) -> ComposeResult:
        yield from self.widgets


def test_series_stays_bounded_and_keeps_the_curve():
    series = DownsampledSeries(capacity=8)
    series.extend((x, x / 10, 100.0 - x) for x in range(1, 1000))  # step, seconds, loss
    assert len(series) <= 9, "8 buckets and the first point"
    steps, seconds, losses = series.column(0), series.column(1), series.column(2)
    assert steps == sorted(steps) and steps[-1] > 900, "in order, up to the latest points"
    assert steps[0] == 1 and losses[0] == 99.0, "the first point as it was: where the curve starts"
    assert all(abs(x + y - 100.0) < 1e-9 for x, y in zip(steps, losses, strict=True)), "on the line"
    assert seconds == pytest.approx([x / 10 for x in steps]), "every number of a point merged alike"
    with pytest.raises(ValueError):
        DownsampledSeries(capacity=1)


def test_the_start_of_training_stays_at_the_start():
    """The issue's case: 5,000 steps into 512 points once made the first point (2433, 0.84)."""
    series = DownsampledSeries(512)
    for i in range(1, 5001):
        series.extend([(i, 4 / i**0.2)])
    (first, loss), (second, _) = series.points[:2]
    assert (first, loss) == (1, 4.0) and second < 5000 / 512, "the first point, then a mean of the next few steps"
    assert series.points[-1][0] > 5000 - 5000 / 512


def log_of(steps: int) -> list[tuple[int, float, float]]:
    """The (step, seconds, loss) lines a metrics log keeps of a session of `steps` steps: every
    LOG_EVERY steps, and the last."""
    return [point(s) for s in range(1, steps + 1) if s % LOG_EVERY == 0 or s == steps]


def point(step: int) -> tuple[int, float, float]:
    return step, step * 0.037, 4.2 / step**0.2 + 0.05 * math.sin(step)


@pytest.mark.parametrize("capacity", [4, CAPACITY])
def test_the_live_series_is_the_one_rebuilt_from_the_log_at_any_length(capacity):
    rng = random.Random(0)
    live = DownsampledSeries(capacity, every=LOG_EVERY)
    step = 0
    for length in (*range(1, 40), 99, 100, 101, 1234, 5119, 5120, 5121, 20_000, 61_357):
        while step < length:  # as the app gets them: every step, in batches of any size
            batch = [point(s) for s in range(step + 1, min(step + rng.randint(1, 300), length) + 1)]
            live.extend(batch)
            step = batch[-1][0]
        rebuilt = DownsampledSeries(capacity, every=LOG_EVERY)
        rebuilt.extend(log_of(length))
        assert live.points == rebuilt.points, f"at step {length}"
        assert len(live) <= capacity + 1


def test_a_resumed_run_rebuilt_from_its_log_matches_the_live_one():
    """Two sessions in one log (the first ended at step 1,234): the relaunched app reads both,
    then goes on live; a later relaunch reads all three."""
    first, second = log_of(1234), [point(s) for s in range(1240, 3001, LOG_EVERY)] + [point(3005)]
    live = DownsampledSeries(16, every=LOG_EVERY)
    live.extend(first)
    live.extend(point(s) for s in range(1235, 3006))
    rebuilt = DownsampledSeries(16, every=LOG_EVERY)
    rebuilt.extend(first + second)
    assert live.points == rebuilt.points


async def test_chart_memory_is_flat_and_it_draws_every_case():
    chart = LossChart()
    async with WidgetApp(chart).run_test(size=(80, 20)) as pilot:
        chart.log_scale = True  # with no data yet
        await pilot.pause()
        chart.add_train_losses([(1, 0.5, 4.0)])
        chart.replot()
        await pilot.pause()
        for start in range(0, 20_000, 500):
            chart.add_train_losses([(s, s / 10, 4.0 / (1 + s)) for s in range(start, start + 500)])
            chart.add_val_loss(start, start / 10, 4.0 / (1 + start))
        chart.replot()
        await pilot.pause()
        assert len(chart.train) <= CAPACITY + 1 and len(chart.val) <= CAPACITY + 1
        chart.log_scale = False
        await pilot.pause()
        last = str(round(max(chart.train.column(0)[-1], chart.val.column(0)[-1])))
        assert last.startswith("19") and last in chart.plt.uncolorize(chart.plt.build()), \
            "whole-number step ticks up to the last step"
        chart.x_axis = "time"
        await pilot.pause()
        drawn = chart.plt.uncolorize(chart.plt.build())
        last = format_seconds(round(chart.train.column(1)[-1]))
        assert last.startswith("33:") and last in drawn and "1999" not in drawn, "m:ss ticks up to the last time"
        assert chart.border_title == "loss by time"


async def test_completion_text_cannot_inject_escape_codes():
    completion = Completion("t", prompt="\x1b[2Jhi ")
    async with WidgetApp(completion).run_test():
        completion.append("\x1b]52;c;ZXZpbA==\x07ok\r\n\ttab")
        assert completion.prompt == "[2Jhi "
        assert completion.text == "]52;c;ZXZpbA==ok\n    tab"


async def test_long_completions_grow_in_paragraphs():
    completion = Completion("t")
    async with WidgetApp(completion).run_test() as pilot:
        line = "x" * 99 + "\n"
        for _ in range(3 * PARAGRAPH_CHARS // len(line)):
            completion.append(line)
        await pilot.pause()
        paragraphs = completion.query(".paragraph")
        assert len(paragraphs) >= 2
        assert "".join(str(p.render()) + "\n" for p in paragraphs).rstrip("\n") == completion.text.rstrip("\n")


async def test_a_line_that_never_ends_is_still_split():
    completion = Completion("t")
    async with WidgetApp(completion).run_test() as pilot:
        for _ in range(3 * LONGEST_PARAGRAPH // 100):
            completion.append("y" * 100)
        await pilot.pause()
        paragraphs = [str(p.render()) for p in completion.query(".paragraph")]
        assert len(paragraphs) >= 2 and max(map(len, paragraphs)) <= LONGEST_PARAGRAPH + 100
        assert "".join(paragraphs) == completion.text


async def test_the_completion_log_is_capped():
    view = CompletionList()
    async with WidgetApp(view).run_test() as pilot:
        for i in range(MAX_COMPLETIONS + 10):
            view.add_completion(Completion(f"c{i}", text="text"))
        await pilot.pause()
        assert len(view.query(Completion)) == MAX_COMPLETIONS
        assert view.last_completion.title == f"c{MAX_COMPLETIONS + 9}"
        assert view.query(Completion).first().title == "c10"
        assert isinstance(view.last_completion.query_one(".paragraph"), Static)


def test_text_helpers():
    assert printable("a\x00b\x1bc\nd\te", TAB) == "abc\nd    e"
    assert one_line("a\nb   c", 10) == "a b c"
    assert one_line("abcdefghijkl", 5) == "abcd…"
    assert format_seconds(75) == "1:15" and format_seconds(3725) == "1:02:05"
    assert [format_count(n) for n in (830, 1234, 27_000, 1_500_000)] == ["830", "1.2k", "27k", "1.50M"]


def test_tui_tables_of_the_settings_file():
    path = Path("minigpt.toml")
    document = {"tui": {"theme": "nord", "other": 1}, "keymap": {"train": "f5", "save": 3, "bogus": "x"}}
    assert read_theme(document, path, {"nord", "textual-dark"}) == ("nord", [])
    theme, problems = read_theme({"tui": {"theme": "pink"}}, path, {"nord"})
    assert theme is None and "'pink'" in problems[0]
    keymap, problems = read_keymap(document, path, ["train", "save"])
    assert keymap == {"train": "f5"}
    assert len(problems) == 2 and any("'bogus'" in p for p in problems)
    assert with_theme(document, "gruvbox")["tui"] == {"theme": "gruvbox", "other": 1}
    assert document["tui"]["theme"] == "nord", "the document itself is not changed"
    assert with_theme({"tui": "junk"}, "nord")["tui"] == {"theme": "nord"}


class FooterApp(App[None]):
    BINDINGS = [Binding("t", "bell", "Train")]
    busy: reactive[bool] = reactive(False, bindings=True)  # as the app's run_state and generating

    def compose(self) -> ComposeResult:
        yield AppFooter(compact=True)


async def test_the_footer_frees_the_keys_it_replaces():
    app = FooterApp()
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.query(FooterKey), "the footer's keys")
        first = [weakref.ref(key) for key in app.query(FooterKey)]
        for _ in range(5):  # each change of state rebuilds the footer's keys
            keys = set(app.query(FooterKey))
            app.busy = not app.busy
            await wait_for(pilot, lambda k=keys: len(app.query(FooterKey)) == len(first)
                           and not k & set(app.query(FooterKey)), "the footer to be rebuilt")
        del keys
        await wait_for(pilot, lambda: (gc.collect(), all(ref() is None for ref in first))[1], "the old keys' release")
        assert len(app.query(FooterKey)) == len(first)


def test_a_series_against_seconds_keeps_its_points():
    """The Lab's chart draws each variant against the seconds it has used: no step numbers there."""
    series = DownsampledSeries(512)
    series.extend([(0.4, 3.0), (1.7, 2.5), (2.9, 2.2)])
    assert series.column(0) == [0.4, 1.7, 2.9] and series.column(1) == [3.0, 2.5, 2.2]
