"""Runs side by side: the metrics log a run keeps (minigpt.plumbing.runlog), reading the
runs of a folder back (minigpt.plumbing.runs) and minigpt-runs, which tabulates them and
overlays their curves."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import runs_cli
from minigpt.plumbing.runlog import RunLog
from minigpt.plumbing.runs import load_runs
from minigpt.trainer import Trainer


def train_run(folder: Path, name: str, config, corpus) -> Trainer:
    """A tiny run that keeps its log as minigpt-train does: folder/name.pt and folder/name.jsonl."""
    trainer = Trainer(config, corpus, checkpoint_path=folder / f"{name}.pt")
    log = RunLog(folder / f"{name}.jsonl", trainer, corpus.name)
    for event in trainer.run():
        log.record(event)
    log.finish()
    return trainer


@pytest.fixture
def three_runs(tmp_path, tiny_config, corpus) -> Path:
    """Three runs of different widths and lengths in one folder."""
    train_run(tmp_path, "narrow", replace(tiny_config, d_model=16), corpus)
    train_run(tmp_path, "wide", replace(tiny_config, d_model=48), corpus)
    train_run(tmp_path, "long", replace(tiny_config, max_iters=30), corpus)
    return tmp_path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_log_records_the_run_and_every_evaluation(tmp_path, tiny_config, corpus):
    trainer = train_run(tmp_path, "model", tiny_config, corpus)
    lines = records(tmp_path / "model.jsonl")
    run = lines[0]
    assert run["event"] == "run" and run["resumed_from"] == 0
    assert run["parameters"] == trainer.num_parameters
    assert (run["tokenizer"], run["vocab_size"]) == ("char", trainer.tokenizer.vocab_size)
    assert (run["device"], run["dtype"]) == ("cpu", "float32")
    assert run["model"]["d_model"] == tiny_config.d_model and run["config"]["lr"] == tiny_config.lr
    evals = [r for r in lines if r["event"] == "eval"]
    assert [e["step"] for e in evals] == [0, 10, 20]
    assert all(e["sample"] and e["tokens"] == e["step"] * tiny_config.batch_size * tiny_config.block_size
               for e in evals)
    assert [r["step"] for r in lines if r["event"] == "step"] == [10, 20]
    assert all("elapsed" in r and "time" in r for r in lines)
    final = lines[-1]  # the run's end: its last weights on the whole validation split
    assert final["event"] == "final" and final["step"] == 20
    assert (final["final_val_loss"], final["final_val_bpc"]) == (trainer.final_score.loss, trainer.final_score.bpc)
    assert final["scored_tokens"] == len(trainer.splits.val) - 1


def test_a_resumed_run_continues_its_log(tmp_path, tiny_config, corpus):
    from minigpt.plumbing.checkpoint import load_checkpoint

    train_run(tmp_path, "model", replace(tiny_config, max_iters=10), corpus)
    resumed = Trainer(tiny_config, corpus, resume=load_checkpoint(tmp_path / "model.pt"))
    log = RunLog(tmp_path / "model.jsonl", resumed, corpus.name)
    for event in resumed.run():
        log.record(event)
    (run,), warnings = load_runs(tmp_path)
    assert warnings == []
    assert run.info["resumed_from"] == 10
    assert [step for step, _ in run.curve("step")] == [0, 10, 20], "the first session's, then the resumed one's"
    assert run.final["step"] == 20 and run.final_val_loss == resumed.final_score.loss  # the first end was step 10's
    assert [sample.step for sample in run.samples()] == [0, 10, 20]


def test_a_new_run_in_the_same_log_replaces_the_old_one_in_the_table(tmp_path, tiny_config, corpus):
    train_run(tmp_path, "model", replace(tiny_config, max_iters=20), corpus)
    train_run(tmp_path, "model", replace(tiny_config, max_iters=10, d_model=16), corpus)
    (run,), _ = load_runs(tmp_path)
    assert run.steps == 10 and run.shape == "d16x2"
    assert len(records(tmp_path / "model.jsonl")) > 5  # the old run's lines are kept in the file


def test_minigpt_runs_prints_a_table_of_the_runs(three_runs, capsys):
    assert runs_cli.main([str(three_runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["run", "parameters", "shape", "tokenizer"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert set(rows) == {"long", "narrow", "wide"}
    runs = {run.name: run for run in load_runs(three_runs)[0]}
    for name, row in rows.items():
        run = runs[name]
        assert row[1:5] == [f"{run.parameters:,}", run.shape, "char", f"{run.steps:,}"]
        assert row[6:10] == [f"{run.final_val_loss:.4f}", f"{run.final_val_bpc:.4f}", f"{run.best_val_loss:.4f}",
                             f"{run.best_val_bpc:.4f}"]
    assert rows["long"][4] == "30" and rows["wide"][2] == "d48x2"


@pytest.mark.parametrize("x", ["step", "tokens", "time"])
@pytest.mark.parametrize("y", ["loss", "bpc"])
def test_minigpt_runs_overlays_the_chosen_runs_curves(three_runs, capsys, x, y):
    assert runs_cli.main([str(three_runs), "--plot", "narrow", "wide", "--x", x, "--y", y]) == 0
    out = capsys.readouterr().out
    plot = out[out.index("validation:"):]
    assert "\x1b[" not in plot  # not a terminal: no colour codes
    runs = {run.name: run for run in load_runs(three_runs)[0]}
    legend = [line for line in plot.splitlines() if "(0." in line]
    assert [runs["narrow"].label in legend[0], runs["wide"].label in legend[1]] == [True, True]
    assert "long (" not in plot
    # Each curve has its own marker, and both are drawn.
    body = "\n".join(line.split("│")[1] for line in plot.splitlines() if line.count("│") == 2)
    assert "*" in body and "o" in body


def test_an_unknown_run_name_is_one_clear_error(three_runs, capsys):
    assert runs_cli.main([str(three_runs), "--plot", "narrow", "medium"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "minigpt-runs: error: no run named medium; the runs are: long, narrow, wide"


def test_a_folder_without_runs_says_so(tmp_path, capsys):
    assert runs_cli.main([str(tmp_path)]) == 2
    assert "no runs found" in capsys.readouterr().err
    assert runs_cli.main([str(tmp_path / "missing")]) == 2
    assert "missing: no such folder" in capsys.readouterr().err


def test_corrupt_and_half_written_logs_warn_and_the_rest_is_shown(three_runs, capsys):
    wide = three_runs / "wide.jsonl"
    lines = wide.read_text().splitlines(keepends=True)
    lines.insert(2, "\x00\x00garbage\n")
    wide.write_text("".join(lines))
    narrow = three_runs / "narrow.jsonl"
    narrow.write_text(narrow.read_text() + '{"event": "eval", "step": 30, "val_lo')  # a crash mid-write
    (three_runs / "empty.jsonl").write_text("not a log at all\n")

    assert runs_cli.main([str(three_runs), "--plot", "narrow", "wide"]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.splitlines()
    assert f"minigpt-runs: warning: {wide}:3: not a JSON record; line skipped" in warnings
    n = len(narrow.read_text().splitlines())
    assert f"minigpt-runs: warning: {narrow}:{n}: cut short (half-written); line skipped" in warnings
    assert any(w.startswith(f"minigpt-runs: warning: {three_runs / 'empty.jsonl'}:1: ") for w in warnings)
    assert f"minigpt-runs: warning: {three_runs / 'empty.jsonl'}: holds no training records; left out" in warnings
    rows = [line.split()[0] for line in captured.out.splitlines()[1:4]]
    assert rows == ["long", "narrow", "wide"]
    runs = {run.name: run for run in load_runs(three_runs)[0]}
    assert [step for step, _ in runs["narrow"].curve()] == [0, 10, 20]  # the cut line is not drawn


def test_a_record_of_the_wrong_shape_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "odd.jsonl").write_text('{"event": "eval", "step": 5, "val_loss": "low"}\n'
                                        '{"event": "step", "step": 5, "loss": 2.0}\n')
    (run,), warnings = load_runs(tmp_path)
    assert warnings == [f"{tmp_path / 'odd.jsonl'}:1: not a metrics record of MiniGPT; line skipped"]
    assert run.steps == 5 and run.evals == [] and run.tokenizer == "?"


def test_the_projects_other_files_are_not_runs(three_runs, capsys):
    """minigpt-tui keeps checkpoints/NAME.completions.jsonl beside NAME.jsonl, and the prompt history
    minigpt-history.jsonl in the project folder: neither is a metrics log, nor warned about as one."""
    from minigpt.plumbing.completions import append_completion, completions_path, new_completion
    from minigpt.plumbing.history import load_history
    from minigpt.plumbing.paths import DEFAULT_HISTORY
    from minigpt.plumbing.settings import SamplingSettings

    path = completions_path(three_runs / "narrow.pt")
    append_completion(path, new_completion("ROMEO:", " Ay", step=10, checkpoint="narrow.pt",
                                           settings=SamplingSettings(seed=1), ended="done"))
    history = load_history(three_runs / DEFAULT_HISTORY)
    for prompt in ("ROMEO:", "JULIET:"):
        history.add(prompt)
    runs, warnings = load_runs(three_runs)
    assert sorted(run.name for run in runs) == ["long", "narrow", "wide"] and warnings == []
    assert runs_cli.main([str(three_runs)]) == 0
    assert capsys.readouterr().err == ""


def test_the_plots_x_ticks_are_round_numbers(three_runs, capsys):
    """They read `100.0 363.2 626.5`: plotext splits the range evenly."""
    assert runs_cli.round_ticks(100, 626.5) == [100, 200, 300, 400, 500, 600]
    assert runs_cli.round_ticks(0, 1e6) == [0, 2e5, 4e5, 6e5, 8e5, 1e6]
    assert [runs_cli.tick_label(v) for v in (0.5, 150, 2e5, 1.5e6)] == ["0.5", "150", "200k", "1.5M"]
    assert runs_cli.main([str(three_runs), "--plot", "narrow", "long", "--x", "tokens"]) == 0
    lines = capsys.readouterr().out.splitlines()
    axis = next(i for i, line in enumerate(lines) if line.lstrip().startswith("└"))
    labels = lines[axis + 1].split()
    tokens_per_step = 8 * 32  # the tiny preset's batch x block
    assert labels == [runs_cli.tick_label(t) for t in runs_cli.round_ticks(0, 30 * tokens_per_step)]  # from step 0
    assert len(labels) >= 3 and all(label.endswith("k") or "." not in label for label in labels)


def test_a_final_score_of_an_earlier_end_is_not_the_runs(tmp_path, tiny_config, corpus):
    from minigpt.plumbing.checkpoint import load_checkpoint

    first = train_run(tmp_path, "model", replace(tiny_config, max_iters=10), corpus)
    (run,), _ = load_runs(tmp_path)
    assert run.final_val_loss == first.final_score.loss and run.final_val_bpc == first.final_score.bpc
    resumed = Trainer(tiny_config, corpus, resume=load_checkpoint(tmp_path / "model.pt"))
    log = RunLog(tmp_path / "model.jsonl", resumed, corpus.name)
    for event in resumed.run():
        log.record(event)
        if getattr(event, "step", 0) == 15:
            resumed.request_stop()  # stopped before its new end: not scored
    log.finish()
    (run,), _ = load_runs(tmp_path)
    assert run.steps == 15 and run.final_val_loss is None and run.final_val_bpc is None
