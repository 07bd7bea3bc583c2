"""Time-budget runs (--time), on a fake clock: every call to time.monotonic()
in minigpt.plumbing.clock moves it on by a fixed tick, so these tests never depend on
how fast the machine is."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch

from minigpt.model import GPT
from minigpt.plumbing import config as cfg
from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.clock import PAUSE, BudgetClock, BudgetTooShort
from minigpt.plumbing.config import TrainConfig
from minigpt.plumbing.session import open_session
from minigpt.plumbing.shape import (
    DROPOUT_PASSES,
    FULL_LR_PASSES,
    LADDER,
    MANY_PASSES_DROPOUT,
    NEAR_MISS,
    PARAMETERS_PER_TOKEN,
    TOKENS_PER_PARAMETER,
    TRAINING_SHARE,
    SpeedCache,
    choose_shape,
    flops_per_token,
    measure_tokens_per_sec,
    parameters,
)
from minigpt.trainer import EvalEvent, FinalScoreEvent, SavedEvent, StepEvent, Trainer


class FakeClock:
    def __init__(self, tick: float) -> None:
        self.now, self.tick = 1000.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock(tick=0.05)
    monkeypatch.setattr("minigpt.plumbing.clock.time.monotonic", clock)
    return clock


def test_durations_and_presets():
    assert [cfg.parse_duration(t) for t in ("90", "90s", "10m", "1.5h", " 2M ")] == [90, 90, 600, 5400, 120]
    for bad in ("", "m", "ten minutes", "nanm"):
        with pytest.raises(ValueError):
            cfg.parse_duration(bad)
    assert cfg.resolve("quick").time_budget == 150 and cfg.resolve("default").time_budget == 600
    assert cfg.resolve("default").max_iters == cfg.MAX_ITERS, "the budget ends the run, not a step count"
    assert cfg.resolve("tiny").time_budget == 0


def test_an_explicit_step_count_means_steps_and_both_can_be_given():
    config, explicit = cfg.resolve_with_explicit_keys("default", flags={"max_iters": 500})
    assert (config.time_budget, config.max_iters) == (0, 500)
    config, _ = cfg.resolve_with_explicit_keys("default", assignments=["time_budget=2m"], flags={"max_iters": 500})
    assert (config.time_budget, config.max_iters) == (120, 500)
    with pytest.raises(cfg.ConfigError, match="time_budget = 'soon': expected a duration such as 90s"):
        cfg.resolve("tiny", assignments=["time_budget=soon"])


def test_a_long_wait_between_events_is_a_pause_and_does_not_count(fake_clock):
    clock = BudgetClock(budget=60, spent=10, started=fake_clock.now - 2)  # two seconds of start-up
    assert clock.used == pytest.approx(12 + fake_clock.tick)
    fake_clock.now += 0.5
    clock.count(after_wait=True)  # the consumer handled an event: counts
    used = clock.used
    fake_clock.now += PAUSE + 5
    clock.count(after_wait=True)  # the consumer paused: does not count
    assert clock.used == pytest.approx(used)


def test_the_speed_is_the_mean_of_the_last_seconds_and_forgets_the_warm_up(fake_clock):
    """Steps of 20 ms, but every second five of them take 60 ms (the app redrawing its chart
    on the same cores): read every half second, the speed once swung from 50 to 27 steps a second."""
    fake_clock.tick = 0.0
    clock = BudgetClock(budget=0)
    fake_clock.now += 1.0  # the first step: warm-up
    clock.step_done()
    readings, next_reading = [], fake_clock.now + 5.0
    for step in range(1, 600):
        fake_clock.now += 0.06 if step % 50 < 5 else 0.02
        clock.step_done()
        if fake_clock.now >= next_reading:
            readings.append(clock.step_seconds)
            next_reading += 0.5
    mean = (5 * 0.06 + 45 * 0.02) / 50
    assert len(readings) > 10 and all(abs(r / mean - 1) < 0.1 for r in readings), readings
    assert max(readings) / min(readings) < 1.15


def test_the_schedule_ends_before_the_deadline_with_room_for_the_last_evaluation(fake_clock):
    clock = BudgetClock(budget=100)
    clock.steps, clock.step_seconds, clock.final_seconds = 40, 1.0, 4.0  # as measured
    clock.used = 50.0
    assert 0.5 < clock.progress(final_batches=20) < 1 and not clock.time_to_stop(final_batches=20)
    clock.used = 100 - 4.0 - 0.5 - 1.0  # one step, the last evaluation and the exit margin left
    assert clock.progress(final_batches=20) == 1 and clock.time_to_stop(final_batches=20)


class StillClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def still_clock(monkeypatch):
    clock = StillClock()
    monkeypatch.setattr("minigpt.plumbing.clock.time.monotonic", clock)
    return clock


def run_on(clock: StillClock, budget: float, start_up: float, step: Callable[[float], float],
           evaluation: Callable[[float], float], eval_iters: int = 8) -> tuple[BudgetClock, float]:
    """Drive a BudgetClock as the trainer does, on a machine where a step and an
    evaluation with its save take step(t) and evaluation(t) seconds at time t of
    the run; the clock, and when the run ends (its last evaluation and save done)."""
    budget_clock = BudgetClock(budget, started=clock.now - start_up)
    while True:
        budget_clock.count(after_wait=True)
        if budget_clock.time_to_stop(eval_iters):
            break
        if budget_clock.time_to_evaluate():
            took = evaluation(budget_clock.used)
            clock.now += took
            budget_clock.count()
            budget_clock.final_seconds = took
            continue
        clock.now += step(budget_clock.used)
        budget_clock.step_done()
    budget_clock.require_room(eval_iters)  # as the trainer's end does: it raises only for a new run's first steps
    clock.now += evaluation(budget_clock.used)
    budget_clock.count()
    return budget_clock, budget_clock.used


def busy_between(start: float, end: float, quiet: float, slowdown: float) -> Callable[[float], float]:
    """What a piece of work takes at time t: quiet seconds, slowdown times as long from start to end."""
    return lambda t: quiet * (slowdown if start <= t < end else 1.0)


@pytest.mark.parametrize("busy", [(0, 0), (25, 35), (40, 100)], ids=["quiet", "busy-at-the-middle-evaluation",
                                                                     "busy-at-the-end"])
def test_a_run_ends_within_a_few_percent_of_its_budget_on_a_busy_machine_too(still_clock, busy):
    """The reserve for the last evaluation follows the machine's pace: one evaluation timed while other
    programs busied the machine once ended a 60 s run at 56 s, and a quiet one's figure would let a run
    on a machine busy at the end overshoot."""
    start, end = busy
    _, ended = run_on(still_clock, 60.0, start_up=3.0, step=busy_between(start, end, 0.1, 3.0),
                      evaluation=busy_between(start, end, 2.0, 3.0))
    assert ended == pytest.approx(60.0 - 0.5, abs=0.03 * 60)  # the exit margin is for the process to end


def test_a_budget_too_short_to_train_is_an_error_naming_the_shortest_one(still_clock):
    with pytest.raises(BudgetTooShort) as error:
        run_on(still_clock, 5.0, start_up=4.2, step=lambda t: 0.3, evaluation=lambda t: 2.0)
    message = str(error.value)
    assert message.startswith("a time budget (--time) of 5 s is too short for this machine: it took 4.2 s to start")
    shortest = int(re.search(r"--time (\d+)s\)", message).group(1))
    clock, _ = run_on(still_clock, shortest, start_up=4.2, step=lambda t: 0.3, evaluation=lambda t: 2.0)
    assert clock.steps >= 3, "the budget named trains"
    resumed = BudgetClock(5.0, spent=2.0, started=still_clock.now - 2.9)  # a resumed run may end at once
    assert resumed.time_to_stop(final_batches=16)
    resumed.require_room(final_batches=16)


def test_a_budget_shorter_than_the_start_up_is_one_clear_line_and_saves_nothing(tmp_path, corpus_text, capsys):
    import train_cli

    (tmp_path / "corpus.txt").write_text(corpus_text)
    status = train_cli.main(["--time", "0.01", "--d-model", "32", "--n-layers", "2", "--n-heads", "2",
                             "--block-size", "32", "--batch-size", "4", "--device", "cpu", "--dtype", "float32",
                             "--data", str(tmp_path / "corpus.txt"), "--out", str(tmp_path / "m.pt"), "--no-sample"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1].startswith("minigpt-train: error: a time budget (--time) of 0.01 s is too short")
    assert "the shortest budget it can train in is about" in err[-1]
    assert not (tmp_path / "m.pt").exists()


def budget_trainer(tiny_config, corpus, checkpoint=None, budget=30.0, resume=None):
    config = replace(tiny_config, time_budget=budget, max_iters=cfg.MAX_ITERS)
    return Trainer(config, corpus, checkpoint_path=checkpoint, resume=resume)


def test_a_budget_run_ends_at_its_floor_with_a_last_evaluation_and_save(tmp_path, tiny_config, corpus, fake_clock):
    trainer = budget_trainer(tiny_config, corpus, tmp_path / "m.pt")
    events = list(trainer.run(started=fake_clock.now))
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert len(steps) > 20
    assert steps[-1].lr == pytest.approx(tiny_config.min_lr), "the last steps run at the schedule's floor"
    assert max(e.lr for e in steps) == pytest.approx(tiny_config.lr, rel=0.05)
    assert [type(e) for e in events[-3:]] == [EvalEvent, FinalScoreEvent, SavedEvent], "ends evaluated, scored, saved"
    assert [e.step for e in events if isinstance(e, EvalEvent)].count(trainer.step) == 1
    assert 30 - 3 < trainer.time_spent <= 30, "the whole budget, but not past it"
    assert trainer.finished and load_checkpoint(tmp_path / "m.pt").time_spent == trainer.time_spent


def test_compiling_in_the_first_steps_is_not_taken_for_the_pace_of_the_run(tmp_path, tiny_config, corpus,
                                                                          fake_clock, monkeypatch):
    """With compile = true the first evaluation compiles the model without gradients and the first step
    compiles it with them (20 s each on a 2-core CPU). Taken for the pace of every step and of every
    batch of the final score, they made a 10-minute run's end look 30 minutes long: it stopped after one
    step, saying the budget was too short."""
    monkeypatch.setattr("minigpt.trainer.time.perf_counter", lambda: fake_clock.now)
    trainer = budget_trainer(tiny_config, corpus, budget=60.0)
    estimate, forward_backward, compiled = trainer.estimate_loss, trainer._forward_backward, set()

    def compiling_first(kind: str, work):
        if kind not in compiled:
            compiled.add(kind)
            fake_clock.now += 20.0
        return work()

    monkeypatch.setattr(trainer, "estimate_loss", lambda split: compiling_first("eval", lambda: estimate(split)))
    monkeypatch.setattr(trainer, "_forward_backward", lambda: compiling_first("train", forward_backward))
    events = list(trainer.run(started=fake_clock.now))
    assert len([e for e in events if isinstance(e, StepEvent)]) > 20
    assert isinstance(events[-1], FinalScoreEvent) and 60 - 5 < trainer.time_spent <= 60


def test_a_stopped_budget_run_resumes_on_the_same_schedule(tmp_path, tiny_config, corpus, fake_clock):
    first = budget_trainer(tiny_config, corpus, tmp_path / "m.pt")
    for event in first.run(started=fake_clock.now):
        if isinstance(event, StepEvent) and event.progress > 0.4:
            first.request_stop()
    spent = load_checkpoint(tmp_path / "m.pt").time_spent
    assert 0.4 * 30 < spent < 30 and not first.finished
    lr_before = event.lr if isinstance(event, StepEvent) else None

    second = budget_trainer(tiny_config, corpus, resume=load_checkpoint(tmp_path / "m.pt"))
    assert second.time_spent == spent and second.step == first.step
    steps = [e for e in second.run(started=fake_clock.now) if isinstance(e, StepEvent)]
    assert steps[0].progress > 0.4, "it goes on where it stopped, not from the start"
    assert lr_before is None or steps[0].lr <= lr_before * 1.05
    # At the floor, to within the last step's move: the fake clock charges the loop a tick outside the step, which
    # the clock's estimate of a step leaves out, so the last step may fall a hair before the schedule's end.
    assert steps[-1].lr == pytest.approx(tiny_config.min_lr, rel=1e-4) and second.finished


def test_a_step_run_counts_its_time_too_across_a_resume(tmp_path, tiny_config, corpus, fake_clock):
    """The chart's time axis and the log read StepEvent.elapsed: the run's time, not the session's."""
    first = Trainer(replace(tiny_config, max_iters=20), corpus, checkpoint_path=tmp_path / "m.pt")
    events = list(first.run())
    elapsed = [e.elapsed for e in events if isinstance(e, StepEvent)]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    evaluated = [e for e in events if isinstance(e, EvalEvent)][-1]
    assert elapsed[-2] <= evaluated.elapsed <= first.time_spent, "an evaluation is placed at its time"
    spent = load_checkpoint(tmp_path / "m.pt").time_spent
    assert spent >= elapsed[-1]
    second = Trainer(replace(tiny_config, max_iters=30), corpus, resume=load_checkpoint(tmp_path / "m.pt"))
    assert next(e for e in second.run() if isinstance(e, StepEvent)).elapsed > spent, "goes on from the first"


def test_resuming_keeps_the_budget_and_time_extends_it(tmp_path, tiny_config, corpus_text, fake_clock):
    data = tmp_path / "input.txt"
    data.write_text(corpus_text)
    budget = replace(tiny_config, time_budget=30.0, max_iters=cfg.MAX_ITERS)
    session = open_session(budget, set(), data, tmp_path / "m.pt")
    list(session.trainer.run(started=fake_clock.now))
    again = open_session(replace(budget, time_budget=600.0), set(), data, tmp_path / "m.pt")
    assert again.finished and again.trainer.config.time_budget == 30, "the checkpoint's budget, not the preset's"
    assert "has used its time budget of 0:30; pass --time" in again.notes[0]
    longer = open_session(replace(budget, time_budget=60.0), {"time_budget"}, data, tmp_path / "m.pt")
    assert not longer.finished
    assert longer.trainer.config.time_budget == pytest.approx(session.trainer.time_spent + 60)


BIG_TEXT = 10**9  # tokens: a corpus big enough for every rung
VOCAB = 65  # timed as 128


def fake_timing(monkeypatch, tmp_path, speed):
    """Time each (rung, number format) with speed(rung, dtype) instead of training; returns the calls."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = []

    def measure(rung, device, dtype, vocab_size, config):
        assert vocab_size == 128
        calls.append((rung, dtype) if config.optimizer == "adamw" else (rung, dtype, config.optimizer))
        return speed(rung, dtype)

    monkeypatch.setattr("minigpt.plumbing.shape.measure_tokens_per_sec", measure)
    return calls


def feeding(rung, budget: float) -> float:
    """The FLOP/s at which a budget feeds this rung exactly enough tokens."""
    return TOKENS_PER_PARAMETER * parameters(rung) * flops_per_token(rung, TrainConfig(), 128) / (budget * 0.9 - 5)


def machine(flops_per_second: float):
    """Tokens/s of each rung on a machine that does this many FLOP/s for every model."""
    return lambda rung, dtype: flops_per_second / flops_per_token(rung, TrainConfig(), 128)


def test_the_largest_model_the_budget_feeds_enough_is_chosen_and_timed_once(tmp_path, monkeypatch, tiny_config):
    config = replace(tiny_config, time_budget=600.0)
    between = (feeding(LADDER[2], 600) * feeding(LADDER[3], 600)) ** 0.5  # enough for rung 2, not 3
    calls = fake_timing(monkeypatch, tmp_path, machine(between))
    choice = choose_shape(config, set(), BIG_TEXT, VOCAB)
    assert choice.settings["d_model"] == LADDER[2].d_model and choice.settings["n_layers"] == LADDER[2].n_layers
    assert f"d_model {LADDER[2].d_model} x {LADDER[2].n_layers} layers" in choice.description
    assert choice.description.startswith("10:00 on cpu, float32")
    assert [rung for rung, _ in calls] == list(LADDER[:4]), "timed up to the first rung too slow, no further"
    assert json.loads((tmp_path / "cache/minigpt/speeds.json").read_text()), "kept for next time"
    calls.clear()
    assert choose_shape(config, set(), BIG_TEXT, VOCAB) == choice and calls == [], "the second time, read back"


@pytest.mark.parametrize(("first", "second", "chosen"), [
    (0.95, 1.05, LADDER[2]),  # the first timing was taken at a busy moment: the second picks the rung
    (0.95, 0.9, LADDER[1]),  # the machine is just too slow for it: the faster timing still falls short
])
def test_a_rung_that_just_misses_the_speed_it_needs_is_timed_once_more(tmp_path, monkeypatch, tiny_config, first,
                                                                          second, chosen):
    assert NEAR_MISS < first < 1
    config = replace(tiny_config, time_budget=600.0)
    timings = [first, second]  # LADDER[2]'s, as shares of the speed that feeds it enough in 600 s

    def speed(rung, dtype):
        share = timings.pop(0) if rung == LADDER[2] else 1.0
        return machine(share * feeding(LADDER[2], 600))(rung, dtype)

    calls = fake_timing(monkeypatch, tmp_path, speed)
    choice = choose_shape(config, set(), BIG_TEXT, VOCAB)
    assert choice.settings["d_model"] == chosen.d_model
    assert [rung for rung, _ in calls] == [LADDER[0], LADDER[1], LADDER[2], LADDER[2]], "timed twice, and no more"
    calls.clear()
    assert choose_shape(config, set(), BIG_TEXT, VOCAB) == choice and calls == [], \
        "the second opinion is kept: the next run does not time it again"


def test_a_run_with_muon_is_timed_with_muon_and_keeps_its_own_timings(tmp_path, monkeypatch, tiny_config):
    config = replace(tiny_config, time_budget=600.0)
    calls = fake_timing(monkeypatch, tmp_path, machine(feeding(LADDER[2], 600) * 1.1))
    choose_shape(config, set(), BIG_TEXT, VOCAB)
    adamw = list(calls)
    calls.clear()
    choose_shape(replace(config, optimizer="muon"), set(), BIG_TEXT, VOCAB)  # AdamW's timings are not Muon's
    assert calls == [(rung, dtype, "muon") for rung, dtype in adamw]
    calls.clear()
    choose_shape(replace(config, optimizer="muon"), set(), BIG_TEXT, VOCAB)
    choose_shape(config, set(), BIG_TEXT, VOCAB)
    assert calls == [], "both kept for next time"


def test_a_rung_is_timed_as_the_run_would_train_it_and_each_model_keeps_its_own_timings(tmp_path, monkeypatch,
                                                                                         tiny_config):
    modern = cfg.resolve("default")  # rotary positions, RMSNorm, ReLU², QK-norm, an untied head, Muon
    built = []

    class Recorded(GPT):
        def __init__(self, config):
            built.append(config)
            super().__init__(config)

    monkeypatch.setattr("minigpt.plumbing.shape.GPT", Recorded)
    measure_tokens_per_sec(LADDER[0], torch.device("cpu"), torch.float32, 128, modern)
    assert built == [LADDER[0].model_config(modern, 128)]
    assert (built[0].rope, built[0].norm, built[0].qk_norm, built[0].tie_head) == (True, "rmsnorm", True, False)

    config = replace(tiny_config, time_budget=600.0)
    calls = fake_timing(monkeypatch, tmp_path, machine(feeding(LADDER[2], 600) * 1.1))
    choose_shape(config, set(), BIG_TEXT, VOCAB)
    first = list(calls)
    calls.clear()
    choose_shape(replace(config, rope=True, norm="rmsnorm"), set(), BIG_TEXT, VOCAB)
    assert calls == first, "the 2019 model's timings are not another model's"
    calls.clear()
    choose_shape(replace(config, rope=True, norm="rmsnorm"), set(), BIG_TEXT, VOCAB)
    choose_shape(config, set(), BIG_TEXT, VOCAB)
    assert calls == [], "both kept for next time"


def test_where_bfloat16_is_fast_the_faster_format_for_the_model_is_chosen(tmp_path, monkeypatch, tiny_config):
    config = replace(tiny_config, time_budget=600.0, dtype="auto")
    monkeypatch.setattr("minigpt.plumbing.shape.pick_dtype", lambda name, device: torch.bfloat16)
    # As on a CPU with AVX512-BF16: bfloat16 is slower than float32 for the two smallest rungs, faster above.
    float32 = machine(0.6 * feeding(LADDER[2], 600))  # enough for rung 2 in bfloat16 only, and rung 3 in neither
    fake_timing(monkeypatch, tmp_path, lambda rung, dtype: float32(rung, dtype) * (
        1 if dtype == torch.float32 else 0.5 if rung in LADDER[:2] else 2))
    choice = choose_shape(config, set(), BIG_TEXT, VOCAB)
    assert (choice.settings["dtype"], choice.settings["d_model"]) == ("bfloat16", LADDER[2].d_model)
    small = choose_shape(replace(config, time_budget=60.0), set(), BIG_TEXT, VOCAB)
    assert (small.settings["dtype"], small.settings["d_model"]) == ("float32", LADDER[0].d_model)
    assert "dtype" not in choose_shape(config, {"dtype"}, BIG_TEXT, VOCAB).settings


def test_a_small_text_gets_a_model_it_cannot_learn_by_heart(tmp_path, monkeypatch, tiny_config):
    config = replace(tiny_config, time_budget=600.0)
    calls = fake_timing(monkeypatch, tmp_path, lambda rung, dtype: 1e9)  # a machine fast enough for any rung
    assert choose_shape(config, set(), BIG_TEXT, VOCAB).settings["d_model"] == LADDER[-1].d_model
    text = int(parameters(LADDER[2]) / PARAMETERS_PER_TOKEN) + 1  # tokens: enough for rung 2, not rung 3
    calls.clear()
    choice = choose_shape(config, set(), text, VOCAB)
    assert (choice.settings["d_model"], choice.settings["n_layers"]) == (LADDER[2].d_model, LADDER[2].n_layers)
    assert "the text can fill" in choice.description
    assert calls == [(LADDER[2], torch.float32)], "timed before; now only again with the many passes' dropout"


def test_many_passes_over_a_small_text_lower_the_learning_rate_and_add_dropout(tmp_path, monkeypatch, tiny_config):
    config = replace(tiny_config, time_budget=600.0)
    fake_timing(monkeypatch, tmp_path, machine(4 * feeding(LADDER[1], 600)))  # rung 1 and no bigger
    rung = LADDER[1]
    tokens_fed = 4 * TOKENS_PER_PARAMETER * parameters(rung)
    assert "~1 pass over the text" in choose_shape(config, set(), int(tokens_fed), VOCAB).description
    big = choose_shape(config, set(), int(tokens_fed / FULL_LR_PASSES) + 1, VOCAB)  # just FULL_LR_PASSES passes
    assert big.settings["d_model"] == rung.d_model and big.settings["lr"] == pytest.approx(rung.lr)
    assert big.settings["dropout"] == 0 and "dropout" not in big.description
    some = choose_shape(config, set(), int(tokens_fed / DROPOUT_PASSES) + 1, VOCAB)  # just DROPOUT_PASSES passes
    assert some.settings["lr"] < rung.lr and some.settings["dropout"] == 0, "a lower rate, and no dropout yet"
    small = choose_shape(config, set(), int(tokens_fed / (4 * FULL_LR_PASSES)), VOCAB)  # four times as many
    assert small.settings["lr"] == pytest.approx(rung.lr / 2, rel=0.01)
    assert small.settings["min_lr"] == pytest.approx(small.settings["lr"] / 20)
    assert small.settings["dropout"] == MANY_PASSES_DROPOUT > 0
    assert f"lr {small.settings['lr']:.2g}, dropout {MANY_PASSES_DROPOUT:g}, ~" in small.description
    yours = choose_shape(replace(config, dropout=0.3), {"lr", "dropout"}, int(tokens_fed / 24), VOCAB)
    assert "lr" not in yours.settings and "dropout" not in yours.settings
    assert "dropout 0.3, ~" in yours.description, "what the run trains with"


def test_with_the_rules_dropout_the_line_promises_the_steps_of_the_model_with_dropout(tmp_path, monkeypatch,
                                                                                       tiny_config):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    timed = []

    def measure(rung, device, dtype, vocab_size, config):  # dropout here halves a step's speed
        timed.append((rung, config.dropout))
        return machine(4 * feeding(LADDER[1], 600))(rung, dtype) * (0.5 if config.dropout else 1.0)

    monkeypatch.setattr("minigpt.plumbing.shape.measure_tokens_per_sec", measure)
    config = replace(tiny_config, time_budget=600.0)
    rung = LADDER[1]
    small_text = int(TOKENS_PER_PARAMETER * parameters(rung) / FULL_LR_PASSES)  # about 4 x FULL_LR_PASSES passes
    choice = choose_shape(config, set(), small_text, VOCAB)
    assert choice.settings["d_model"] == rung.d_model and choice.settings["dropout"] == MANY_PASSES_DROPOUT
    assert timed[-1] == (rung, MANY_PASSES_DROPOUT), "the chosen model timed again, with the rule's dropout"
    with_dropout = measure(rung, None, torch.float32, 128, replace(config, dropout=MANY_PASSES_DROPOUT))
    steps = with_dropout * (600 * TRAINING_SHARE - 5) / (rung.batch_size * rung.block_size)
    assert f"dropout {MANY_PASSES_DROPOUT:g}, ~{steps:,.0f} steps" in choice.description
    cached = SpeedCache(torch.device("cpu"), 128, replace(config, **choice.settings))
    assert cached.get(rung, torch.float32) == with_dropout, "kept, so a run with it checks the figure"
    timed.clear()
    assert choose_shape(config, set(), small_text, VOCAB) == choice and timed == [], "read back the next time"


def test_what_the_user_sets_wins(tmp_path, monkeypatch, tiny_config):
    config = replace(tiny_config, time_budget=600.0)
    fake_timing(monkeypatch, tmp_path, lambda rung, dtype: 1e9)
    assert choose_shape(config, {"d_model"}, BIG_TEXT, VOCAB) is None, "a width given: the user's shape"
    choice = choose_shape(replace(config, batch_size=3), {"batch_size", "lr"}, BIG_TEXT, VOCAB)
    assert "batch_size" not in choice.settings and "lr" not in choice.settings
    assert f"block {LADDER[-1].block_size}, batch 3, lr {config.lr:.2g}," in choice.description, "what it will train"
    assert choice.settings["d_model"] == LADDER[-1].d_model
    assert choose_shape(replace(config, time_budget=0.0), set(), BIG_TEXT, VOCAB) is None, "no budget, no choice"
