"""The Lab's runner: every built-in experiment end to end at a tiny scale, each variant a normal
run that is the model it claims to be, and an interrupted experiment that resumes where it stopped."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from minigpt.model import GPT
from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.experiments import BUILTINS, Experiment, ExperimentError, Variant, base_config, variant_config
from minigpt.plumbing.lab import (
    ExperimentDone,
    ExperimentStopped,
    LabRun,
    VariantDone,
    VariantStarted,
    VariantTraining,
)
from minigpt.plumbing.lab_record import Budget, LabError, load_record
from minigpt.plumbing.runs import load_runs
from minigpt.trainer import EvalEvent, StepEvent, model_config

# Every variant keeps the knob it turns; everything else is as small as a model gets.
TINY = {"d_model": 32, "n_layers": 1, "n_heads": 2, "block_size": 16, "batch_size": 2, "eval_iters": 1,
        "eval_interval": 1000, "dtype": "float32", "device": "cpu"}  # evaluated once, at the end
WORDS = ("the king and queen of a land where rivers run to the sea sang while old men wept for "
         "love and bread under stars").split()


@pytest.fixture(autouse=True)
def one_thread():
    """Models this small run faster on one thread, and far faster on a busy machine, where a second
    thread spends each of thousands of tiny operations waiting to be woken."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def text(tmp_path: Path) -> Path:
    """Twenty thousand characters of varied words: enough for a context of 256 and a BPE of 1,024."""
    rng = random.Random(0)
    path = tmp_path / "words.txt"
    path.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(330)) + "\n")
    return path


def run_all(lab: LabRun, stop_at: tuple[int, int] | None = None) -> list:
    """Every event of lab.run(); stop_at (variant, step) asks it to stop there."""
    events = []
    for event in lab.run():
        events.append(event)
        if stop_at and isinstance(event, VariantTraining) and isinstance(event.event, StepEvent) \
                and (event.index, event.event.step) == stop_at:
            lab.request_stop()
    return events


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def val_losses(events: list) -> list[tuple[int, int, float]]:
    return [(e.index, e.event.step, e.event.val_loss) for e in of(events, VariantTraining)
            if isinstance(e.event, EvalEvent)]


@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_builtin_experiment_runs_end_to_end_at_a_tiny_scale(name, tmp_path, text):
    experiment = BUILTINS[name]
    if missing := experiment.missing_keys():
        with pytest.raises(ExperimentError, match=f"{name} needs the config keys {', '.join(missing)}"):
            LabRun(experiment, Budget(steps=2), tmp_path / "lab", text, TINY)
        return
    events = run_all(LabRun(experiment, Budget(steps=2), tmp_path / "lab", text, TINY))
    started, done = of(events, VariantStarted), of(events, VariantDone)
    assert [e.variant.name for e in started] == [v.name for v in experiment.variants]
    assert [e.index for e in done] == list(range(len(experiment.variants)))
    (end,) = of(events, ExperimentDone)
    assert "bits/char" in end.conclusion and set(end.results) == {v.name for v in experiment.variants}
    base = base_config(experiment, TINY)
    for start in started:
        config = variant_config(base, experiment, start.variant)
        checkpoint = load_checkpoint(tmp_path / "lab" / name / f"{start.variant.name}.pt")
        # The variant is the model it claims to be: its shape, and so its size.
        assert checkpoint.model_config == model_config(config, checkpoint.tokenizer.vocab_size)
        assert checkpoint.tokenizer.kind == config.tokenizer
        assert start.parameters == GPT(checkpoint.model_config).num_parameters()
        result = end.results[start.variant.name]
        assert (result.steps, result.parameters) == (2, start.parameters)
        assert result.tokens == 2 * start.tokens_per_step
        assert result.sample and result.val_bpc > 0
        # Its figure is its last weights' score on the whole validation split, not its best evaluation.
        assert (result.val_loss, result.val_bpc) == (result.run.final_val_loss, result.run.final_val_bpc)


def test_the_variants_are_normal_runs_that_minigpt_runs_reads(tmp_path, text):
    run_all(LabRun(BUILTINS["depth"], Budget(steps=2), tmp_path / "lab", text, TINY))
    runs, warnings = load_runs(tmp_path / "lab")
    assert warnings == []
    assert sorted(run.name for run in runs) == ["depth/layers-1", "depth/layers-2", "depth/layers-4", "depth/layers-8"]
    assert sorted(run.shape for run in runs) == ["d32x1", "d32x2", "d32x4", "d32x8"]


SMALL = Experiment("small", "Which width?", (Variant("a", {"d_model": 16}), Variant("b", {"d_model": 32}),
                                             Variant("c", {"d_model": 48})), compare="scale")


def test_an_interrupted_experiment_resumes_where_it_stopped(tmp_path, text):
    unbroken = run_all(LabRun(SMALL, Budget(steps=6), tmp_path / "unbroken", text, TINY))

    first = run_all(LabRun(SMALL, Budget(steps=6), tmp_path / "lab", text, TINY), stop_at=(1, 3))
    assert of(first, ExperimentStopped) == [ExperimentStopped(1)]
    assert not of(first, ExperimentDone) and [e.index for e in of(first, VariantDone)] == [0]
    assert load_checkpoint(tmp_path / "lab/small/b.pt").step == 3  # the variant in progress was saved
    record = load_record(tmp_path / "lab/small")
    assert (record.started, record.done) == (("a", "b"), ("a",))

    again = run_all(LabRun(SMALL, Budget(steps=6), tmp_path / "lab", text, TINY))
    assert of(again, VariantDone)[0] == VariantDone(0, of(again, VariantDone)[0].result, earlier=True)
    assert [(e.index, e.resumed) for e in of(again, VariantStarted)] == [(1, True), (2, False)]
    first_step = next(e.event.step for e in of(again, VariantTraining) if isinstance(e.event, StepEvent))
    assert first_step == 4
    # Resumed exactly: the evaluations are those of the unbroken run, bit for bit.
    assert val_losses(first) + val_losses(again) == val_losses(unbroken)
    assert of(again, ExperimentDone)[0].conclusion == of(unbroken, ExperimentDone)[0].conclusion


def test_a_finished_experiment_run_again_trains_nothing_and_concludes(tmp_path, text):
    run_all(LabRun(SMALL, Budget(steps=2), tmp_path / "lab", text, TINY))
    again = run_all(LabRun(SMALL, Budget(steps=2), tmp_path / "lab", text, TINY))
    assert not of(again, VariantStarted) and all(e.earlier for e in of(again, VariantDone))
    assert of(again, ExperimentDone)


def test_a_time_budget_variant_resumes_with_the_rest_of_its_budget(tmp_path, text):
    budget = Budget(seconds=600)  # never reached: both runs are stopped
    first = run_all(LabRun(SMALL, budget, tmp_path / "lab", text, TINY), stop_at=(0, 2))
    assert of(first, ExperimentStopped) == [ExperimentStopped(0)]
    stopped = load_checkpoint(tmp_path / "lab/small/a.pt")
    assert stopped.train_config["time_budget"] == 600 and 0 < stopped.time_spent < 600

    lab = LabRun(SMALL, budget, tmp_path / "lab", text, TINY)
    for event in lab.run():
        if isinstance(event, VariantStarted):
            assert (event.index, event.resumed) == (0, True)
            # Its own budget goes on from the time it had used (not 600 s more).
            assert lab.trainer.config.time_budget == 600 and lab.trainer.time_spent == stopped.time_spent
            lab.request_stop()
    assert load_checkpoint(tmp_path / "lab/small/a.pt").step > stopped.step


def test_running_an_experiment_another_way_needs_fresh(tmp_path, text):
    run_all(LabRun(SMALL, Budget(steps=2), tmp_path / "lab", text, TINY), stop_at=(1, 1))
    with pytest.raises(LabError, match="holds a run of small with 2 steps per variant \\(now 3 steps per variant\\); "
                                       "run it the same way to resume it, or pass --fresh"):
        run_all(LabRun(SMALL, Budget(steps=3), tmp_path / "lab", text, TINY))
    with pytest.raises(LabError, match="with d_model = 32 \\(now 24\\)"):
        run_all(LabRun(SMALL, Budget(steps=2), tmp_path / "lab", text, {**TINY, "d_model": 24}))
    fresh = run_all(LabRun(SMALL, Budget(steps=3), tmp_path / "lab", text, TINY, fresh=True), stop_at=(0, 1))
    assert [e.resumed for e in of(fresh, VariantStarted)] == [False]
    # b's checkpoint is from the run before --fresh: it is trained anew, not resumed.
    again = run_all(LabRun(SMALL, Budget(steps=3), tmp_path / "lab", text, TINY))
    assert [(e.index, e.resumed) for e in of(again, VariantStarted)] == [(0, True), (1, False), (2, False)]
    assert json.loads((tmp_path / "lab/small/experiment.json").read_text())["done"] == ["a", "b", "c"]


def test_an_experiment_resumes_from_its_record_as_it_was_run(tmp_path, text):
    run_all(LabRun(SMALL, Budget(steps=4), tmp_path / "lab", text, {**TINY, "lr": 1e-3}), stop_at=(0, 2))
    lab = LabRun.resuming(load_record(tmp_path / "lab/small"), tmp_path / "lab")
    assert (lab.budget, lab.data, lab.base) == (Budget(steps=4), text, LabRun(SMALL, Budget(steps=4), tmp_path,
                                                                               text, {**TINY, "lr": 1e-3}).base)
    events = run_all(lab)
    assert [(e.index, e.resumed) for e in of(events, VariantStarted)] == [(0, True), (1, False), (2, False)]
    assert of(events, ExperimentDone)


def test_variants_that_use_their_time_are_done_and_the_experiment_concludes(tmp_path, text):
    """However early the clock ends a variant (it keeps time for the last evaluation), it is done."""
    pair = Experiment("pair", "Which?", SMALL.variants[:2])
    events = run_all(LabRun(pair, Budget(seconds=4), tmp_path / "lab", text, TINY))
    assert not of(events, ExperimentStopped) and of(events, ExperimentDone)
    assert load_record(tmp_path / "lab/pair").done == ("a", "b")


@pytest.mark.skipif(bool(BUILTINS["attention-and-mlp"].missing_keys()), reason="the attention and mlp switches")
def test_each_attention_and_mlp_variant_has_the_layers_it_claims():
    experiment = BUILTINS["attention-and-mlp"]
    base = base_config(experiment)
    models = {v.name: GPT(model_config(variant_config(base, experiment, v), 65)) for v in experiment.variants}
    names = {variant: {name for name, _ in model.named_parameters()} for variant, model in models.items()}
    assert any(".attn." in n for n in names["full"]) and any(".mlp." in n for n in names["full"])
    assert not any(".mlp." in n for n in names["no-mlp"]) and any(".attn." in n for n in names["no-mlp"])
    assert not any(".attn." in n for n in names["no-attention"]) and any(".mlp." in n for n in names["no-attention"])
    assert not any(".attn." in n or ".mlp." in n for n in names["neither"])
    count = {variant: model.num_parameters() for variant, model in models.items()}
    d, layers = base.d_model, base.n_layers
    assert count["full"] - count["no-attention"] >= 4 * d * d * layers  # queries, keys, values, output
    assert count["full"] - count["no-mlp"] >= 8 * d * d * layers  # expand 4x, project back
    assert count["full"] - count["no-attention"] - count["no-mlp"] + count["neither"] == 0
