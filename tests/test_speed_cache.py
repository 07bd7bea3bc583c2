"""The speed cache behind a time budget's shape (minigpt.plumbing.shape), on a fake
wall clock and fake timings: a figure timed at a busy moment is corrected by the
next run of that shape (minigpt.plumbing.speedcheck) or by --retime, and the
one-line choice says when its timing was taken."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch
from test_time_budget import BIG_TEXT, VOCAB, StillClock, fake_timing, feeding, machine

import train_cli
from minigpt.plumbing import config as cfg
from minigpt.plumbing.config import apply_overrides
from minigpt.plumbing.corpus import Corpus
from minigpt.plumbing.shape import LADDER, SpeedCache, choose_shape, timed_vocab
from minigpt.plumbing.speedcheck import SKIPPED_STEPS, SpeedCorrected, checking_speed
from minigpt.trainer import StepEvent, Trainer

DAY = 86400.0
# Tokens/s of each rung on the machine of these tests: it feeds the second rung at 10 minutes, not the third.
HONEST = machine(1.5 * feeding(LADDER[1], 600))


@pytest.fixture
def wall(monkeypatch) -> StillClock:
    clock = StillClock()
    monkeypatch.setattr("minigpt.plumbing.shape.wall_clock", clock)
    return clock


@pytest.fixture
def wide_corpus(corpus_text) -> Corpus:
    """A text of 95 characters, so that its vocabulary is timed as VOCAB's (128)."""
    return Corpus.from_text(corpus_text + "".join(map(chr, range(32, 127))), "wide")


def steps_at(speeds: list[float]) -> Iterator[StepEvent]:
    """A run's events, as Trainer.run() streams them, at these tokens/s."""
    for step, speed in enumerate(speeds, start=1):
        yield StepEvent(step, 10_000, 2.0, 1e-3, speed, float(step), 0.0, 0.0)


def test_a_timing_taken_at_a_busy_moment_is_corrected_by_the_next_run(tmp_path, monkeypatch, wall, tiny_config,
                                                                     wide_corpus):
    busy = {LADDER[0]: 0.1}  # the smallest rung was timed while other programs busied the machine
    calls = fake_timing(monkeypatch, tmp_path, lambda rung, dtype: HONEST(rung, dtype) * busy.get(rung, 1.0))
    config = replace(tiny_config, time_budget=600.0)
    first = choose_shape(config, set(), BIG_TEXT, VOCAB)
    assert first.settings["d_model"] == LADDER[0].d_model, "too slow, by its figure, to try a bigger one"
    assert "GFLOP/s, timed just now)" in first.description
    wall.now += 3 * DAY
    calls.clear()
    again = choose_shape(config, set(), BIG_TEXT, VOCAB)
    assert again.settings == first.settings and calls == [], "read back: a busy moment decided for good"
    assert "timed 3 days ago" in again.description

    busy.clear()
    trainer = Trainer(apply_overrides(config, first.settings), wide_corpus)
    speed = HONEST(LADDER[0], torch.float32)
    # The run goes at the machine's speed, but for a busy moment of its own (every third step a third as fast).
    speeds = [speed / 3 if i % 3 == 0 else speed for i in range(SKIPPED_STEPS + 100)]
    events = list(checking_speed(trainer, (steps_at(speeds))))
    *steps, correction = events
    assert len(steps) == len(speeds) and isinstance(correction, SpeedCorrected)
    assert correction.cached == pytest.approx(0.1 * speed) and correction.measured == pytest.approx(speed)
    assert correction.description.startswith(f"the speed cache had {0.1 * speed:,.0f} tokens/s for d_model "
                                             f"{LADDER[0].d_model} x {LADDER[0].n_layers} layers (timed 3 days ago); "
                                             f"this run trained at {speed:,.0f} tokens/s")
    assert not any(isinstance(e, SpeedCorrected) for e in checking_speed(trainer, (steps_at(speeds)))), \
        "now the cache is right"

    corrected = choose_shape(config, set(), BIG_TEXT, VOCAB)
    assert corrected.settings["d_model"] == LADDER[1].d_model, "the next choice goes by the corrected figure"


def test_a_run_close_to_the_figure_or_too_short_to_tell_changes_nothing(tmp_path, monkeypatch, wall, tiny_config,
                                                                       wide_corpus):
    fake_timing(monkeypatch, tmp_path, HONEST)
    config = replace(tiny_config, time_budget=600.0)
    choice = choose_shape(config, set(), BIG_TEXT, VOCAB)
    trainer = Trainer(apply_overrides(config, choice.settings), wide_corpus)
    speed = HONEST(LADDER[1], torch.float32)
    for speeds in ([0.8 * speed] * 200, [0.1 * speed] * (SKIPPED_STEPS + 10)):
        assert not any(isinstance(e, SpeedCorrected) for e in checking_speed(trainer, (steps_at(speeds))))
    other = Trainer(apply_overrides(config, {**choice.settings, "batch_size": 5}), wide_corpus)  # not a rung
    assert not any(isinstance(e, SpeedCorrected) for e in checking_speed(other, (steps_at([speed / 10] * 200))))


def test_retime_times_again_and_replaces_what_the_cache_held(tmp_path, monkeypatch, wall, tiny_config):
    busy = {LADDER[0]: 0.1}
    calls = fake_timing(monkeypatch, tmp_path, lambda rung, dtype: HONEST(rung, dtype) * busy.get(rung, 1.0))
    config = replace(tiny_config, time_budget=600.0)
    assert choose_shape(config, set(), BIG_TEXT, VOCAB).settings["d_model"] == LADDER[0].d_model
    busy.clear()
    wall.now += DAY
    calls.clear()
    retimed = choose_shape(config, set(), BIG_TEXT, VOCAB, retime=True)
    assert [rung for rung, _ in calls][:2] == [LADDER[0], LADDER[1]], "timed again, not read back"
    assert retimed.settings["d_model"] == LADDER[1].d_model and "timed just now" in retimed.description
    calls.clear()
    assert choose_shape(config, set(), BIG_TEXT, VOCAB) == retimed and calls == [], "kept for next time"


def test_a_bigger_model_timed_slower_per_flop_than_a_smaller_one_is_timed_again(tmp_path, monkeypatch, wall,
                                                                                tiny_config):
    timings = {rung: 0 for rung in LADDER}

    def first_timing_of_rung_1_busy(rung, dtype):
        timings[rung] += 1
        return HONEST(rung, dtype) * (0.2 if rung == LADDER[1] and timings[rung] == 1 else 1.0)

    fake_timing(monkeypatch, tmp_path, first_timing_of_rung_1_busy)
    choice = choose_shape(replace(tiny_config, time_budget=600.0), set(), BIG_TEXT, VOCAB)
    assert timings[LADDER[1]] == 2 and choice.settings["d_model"] == LADDER[1].d_model


def test_a_cache_from_before_timings_were_dated_is_timed_again(tmp_path, monkeypatch, wall, tiny_config):
    calls = fake_timing(monkeypatch, tmp_path, HONEST)
    cache = SpeedCache(torch.device("cpu"), timed_vocab(VOCAB), tiny_config)
    cache.record(LADDER[0], torch.float32, 1.0)
    cache.save()
    undated = {machine: {key: entry["tokens_per_sec"] for key, entry in rungs.items()}
               for machine, rungs in json.loads(cache.path.read_text()).items()}
    cache.path.write_text(json.dumps(undated))
    choice = choose_shape(replace(tiny_config, time_budget=600.0), set(), BIG_TEXT, VOCAB)
    assert calls[0][0] == LADDER[0] and choice.settings["d_model"] == LADDER[1].d_model


def test_minigpt_train_corrects_a_poisoned_figure_and_says_so(tmp_path, monkeypatch, wall, capsys, wide_corpus):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rung, config = LADDER[0], cfg.resolve("default")  # the figure of the optimizer and model the run uses
    cache = SpeedCache(torch.device("cpu"), timed_vocab(len(wide_corpus.characters)), config)
    cache.record(rung, torch.float32, 1.0)  # far below any machine's speed
    cache.save()
    wall.now += 2 * 3600
    data = tmp_path / "corpus.txt"
    data.write_text("".join(wide_corpus.chunks()))
    status = train_cli.main(["--max-iters", "80", "--d-model", str(rung.d_model), "--n-layers", str(rung.n_layers),
                             "--n-heads", str(rung.n_heads), "--block-size", str(rung.block_size), "--batch-size",
                             str(rung.batch_size), "--dtype", "float32", "--device", "cpu", "--no-sample",
                             "--data", str(data), "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert status == 0
    assert (f"note: the speed cache had 1 tokens/s for d_model {rung.d_model} x {rung.n_layers} layers (timed 2 hours "
            "ago); this run trained at ") in err
    assert SpeedCache(torch.device("cpu"), timed_vocab(len(wide_corpus.characters)), config).get(
        rung, torch.float32) > 1
