"""The benchmark runner, `python -m bench` (bench/, run from the repository
root). The benchmarks are run by hand and never timed here: these tests check
that they start where they should, and that SIGTERM and SIGINT end them."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
START_LIMIT = 180  # seconds a benchmark may take to get to its work (a guard against a hang, not a target)
EXIT_LIMIT = 60  # seconds it may take to end once signalled (likewise)


def test_training_benchmarks_run_where_textual_is_not_installed():
    # A GPU box that only trains may lack the app's dependencies.
    code = ("import sys; sys.modules['textual'] = None; from bench.__main__ import main; "
            "sys.exit(main(['train', '--help']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--steps" in result.stdout


class Benchmark:
    """`python -m bench ARGS` in a subprocess, its temporary files in a folder of their own."""

    def __init__(self, args: list[str], folder: Path) -> None:
        self.temporary = folder / "tmp"
        self.temporary.mkdir()
        self._stderr = folder / "stderr.txt"
        env = {**os.environ, "TMPDIR": str(self.temporary), "OMP_NUM_THREADS": "1"}
        env.pop("MINIGPT_SETTINGS", None)
        with self._stderr.open("w") as stderr:
            self.process = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=REPO, env=env,
                                            stdout=subprocess.PIPE, stderr=stderr, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()  # also keeps the pipe from filling

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def stderr(self) -> str:
        return self._stderr.read_text()

    def wait_for(self, text: str) -> str:
        """The first line of stdout holding text: the benchmark has got that far."""
        deadline = time.monotonic() + START_LIMIT
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.process.kill()
                pytest.fail(f"no line with {text!r} within {START_LIMIT} s:\n{self.stderr()}")
            if line is None:
                pytest.fail(f"ended with status {self.process.wait()} before a line with {text!r}:\n{self.stderr()}")
            if text in line:
                return line

    def signal_and_wait(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=EXIT_LIMIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"still running {EXIT_LIMIT} s after {signal.Signals(signum).name}:\n{self.stderr()}")

    def files_left(self) -> list[str]:
        """What the benchmark's temporary files and folders left behind (not PyTorch's cache folder)."""
        return sorted(p.name for p in self.temporary.iterdir() if p.name.startswith(tempfile.gettempprefix()))


def check_ended_cleanly(bench: Benchmark, status: int, signum: int) -> None:
    stderr = bench.stderr()
    assert status == 128 + signum, stderr
    assert stderr.strip().splitlines()[-1] == f"{signal.Signals(signum).name}: benchmark stopped", stderr
    assert "Traceback" not in stderr
    assert bench.files_left() == []


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def corpus_file(tmp_path, corpus_text) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(corpus_text)
    return path


SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")]


@pytest.mark.parametrize("signum", SIGNALS)
def test_the_app_benchmark_ends_on_a_signal_while_the_app_trains(signum, tmp_path, corpus_file):
    # It once went on waiting for an app that had quit on SIGTERM, for good.
    bench = Benchmark(["tui", "--preset", "tiny", "--warmup-steps", "1", "--steps", "5", "--threads", "1",
                       "--typing-steps", "1000000", "--no-first-paint", "--data", str(corpus_file)], tmp_path)
    bench.wait_for("inside the app: training")
    check_ended_cleanly(bench, bench.signal_and_wait(signum), signum)


@pytest.mark.parametrize("signum", SIGNALS)
def test_the_inspect_benchmark_ends_on_a_signal_while_the_app_trains(signum, tmp_path, corpus_file):
    bench = Benchmark(["inspect", "--preset", "tiny", "--block-size", "16", "--repeats", "1", "--steps", "1000000",
                       "--threads", "1", "--data", str(corpus_file)], tmp_path)
    bench.wait_for("inside the app: training")
    check_ended_cleanly(bench, bench.signal_and_wait(signum), signum)


@pytest.mark.parametrize("signum", SIGNALS)
def test_the_budget_benchmark_ends_on_a_signal_and_takes_its_child_with_it(signum, tmp_path, corpus_file):
    bench = Benchmark(["train", "--preset", "tiny", "--set", "max_iters=1000000", "--budget", "600",
                       "--data", str(corpus_file)], tmp_path)
    started = bench.wait_for("in a child process")
    child = int(re.search(r"pid (\d+)", started).group(1))
    check_ended_cleanly(bench, bench.signal_and_wait(signum), signum)
    assert not running(child)


async def test_the_app_benchmark_trains_the_same_shape_in_the_app_as_headless(tmp_path, corpus_file, monkeypatch):
    """`bench tui` once compared the preset's model headless with the far smaller one that the shape
    chooser picked for the app's time budget (headless 4,560 tokens/s, the app 28,576: "582%")."""
    import argparse

    from bench import app as bench_app
    from minigpt.plumbing.corpus import open_corpus
    from minigpt.trainer import Trainer

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # were a shape chosen, its timings go here
    monkeypatch.setenv("MINIGPT_SETTINGS", str(tmp_path / "minigpt.toml"))  # restored after: the app sets its own
    parser = argparse.ArgumentParser()
    bench_app.add_arguments(parser)
    args = parser.parse_args(["--data", str(corpus_file), "--size", "80x24"])  # the default preset, quick: a budget
    config = bench_app.run_config(args)
    headless = Trainer(config, open_corpus(corpus_file))
    async with bench_app.headless_app(config, args) as (app, _):
        assert app.session.shape_choice is None
        assert app.session.trainer.model_config == headless.model_config
        assert app.session.trainer.config.batch_size == headless.config.batch_size


def test_the_budget_benchmark_reads_the_final_score_a_run_logged_and_scores_the_same_from_its_checkpoint(
        tmp_path, corpus_file, tiny_config):
    from bench.train import _logged_final, final_score, spread
    from minigpt.plumbing.corpus import open_corpus
    from minigpt.plumbing.runlog import RunLog
    from minigpt.trainer import Trainer

    trainer = Trainer(tiny_config, open_corpus(corpus_file), checkpoint_path=tmp_path / "model.pt")
    log = RunLog(tmp_path / "model.jsonl", trainer, "corpus")
    for event in trainer.run():
        log.record(event)
    assert _logged_final(tmp_path / "model.jsonl") == trainer.final_score
    assert final_score(tmp_path / "model.pt", corpus_file) == trainer.final_score  # a run cut short: the same figure
    assert final_score(tmp_path / "missing.pt", corpus_file) is None
    assert spread([1.5, 1.6, 1.7]) == "1.6000 ± 0.1000 (1.5000 to 1.7000)"


def test_the_throughput_benchmark_of_a_budget_preset_measures_the_shape_its_budget_picks(
        tmp_path, monkeypatch, capsys, corpus_file):
    import argparse

    from bench.train import add_arguments, run
    from minigpt.plumbing.shape import LADDER

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # 3,000 tokens/s for every size: enough to feed the smallest rung in 150 s, far from the next.
    monkeypatch.setattr("minigpt.plumbing.shape.measure_tokens_per_sec", lambda *args: 3_000.0)
    monkeypatch.setattr("bench.train.matmul_flops", lambda dtype, device: 1e12)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run(parser.parse_args(["--preset", "quick", "--steps", "1", "--warmup-steps", "1", "--data", str(corpus_file),
                           "--set", "dtype=float32"]))
    out = capsys.readouterr().out
    smallest = LADDER[0]
    assert out.startswith("2:30 on cpu, float32 (~"), "the line minigpt-train prints for the shape it picks"
    assert f"d_model {smallest.d_model} x {smallest.n_layers} layers" in out.splitlines()[0]
    assert f"batch {smallest.batch_size}, block {smallest.block_size}, d_model {smallest.d_model}," in out, \
        "and the benchmark measures that shape"


@pytest.mark.parametrize(("arguments", "expected"), [
    (["--preset", "default", "--budget", "400"], ["time_budget=400"]),  # not cut off at 400 s of 600
    (["--preset", "quick", "--budget", "600"], ["time_budget=600"]),  # not ended at 150 s of 600
    (["--preset", "quick", "--budget", "150"], []),  # its own budget already
    (["--preset", "default", "--budget", "400", "--set", "time_budget=300"], ["time_budget=300"]),  # the user's
    (["--preset", "tiny", "--budget", "60"], []),  # a run of so many steps, cut off at the budget
])
def test_a_budget_run_of_a_preset_with_a_time_budget_trains_for_the_benchmarks_budget(arguments, expected):
    import argparse

    from bench.train import add_arguments, child_settings

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = child_settings(parser.parse_args(arguments), seed=None)
    assert [s for s in settings if s.startswith("time_budget=")] == expected


def test_the_lab_benchmark_reports_each_variants_wall_time_against_its_budget(tmp_path, corpus_file):
    experiment = tmp_path / "two.toml"
    experiment.write_text('question = "Which?"\n[variants.narrow]\nd_model = 8\n[variants.wide]\nd_model = 16\n')
    bench = Benchmark(["lab", "--experiment", str(experiment), "--time", "10s", "--data", str(corpus_file),
                       "--set", "n_layers=1", "--set", "block_size=8", "--set", "batch_size=2",
                       "--set", "eval_iters=1", "--set", "dtype=float32"], tmp_path)
    rows = [bench.wait_for("narrow "), bench.wait_for("wide ")]
    assert all(row.split()[1] == "10.0s" and row.split()[3].endswith("%") for row in rows)
    assert "the whole experiment: " in bench.wait_for("the whole experiment")
    assert bench.process.wait(timeout=EXIT_LIMIT) in (0, 1)  # 1: a variant off its budget (a busy machine)
    assert bench.files_left() == []


@pytest.mark.parametrize("optimizer", ["muon", "adamw"])
def test_the_throughput_benchmark_counts_muons_products_and_profiles_the_steps(optimizer, monkeypatch, capsys):
    import argparse

    from bench.train import add_arguments, run

    monkeypatch.setattr("bench.train.matmul_flops", lambda dtype, device: 1e12)  # a 4096 x 4096 product takes seconds
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run(parser.parse_args(["--preset", "tiny", "--steps", "2", "--warmup-steps", "1", "--profile",
                           "--set", "dtype=float32", "--set", f"optimizer={optimizer}"]))
    out = capsys.readouterr().out
    assert re.search(r"training: [\d,]+ tokens/s", out) and "MFU " in out
    assert "where 10 training steps' time goes" in out and "aten::mm" in out
    products = re.search(r"its products ([\d.e+-]+) GFLOP a step against the model's ([\d.e+-]+): MFU (\d+)% at most",
                         out)
    alone = re.search(r"its products alone, each timed at the step's shapes: (.*); a step takes no less than", out)
    assert alone, "the least time a step could take, its products alone"
    parts = [part.rsplit(" ", 2)[0] for part in alone[1].split(", ")]
    assert parts == ["linear maps", "attention"] + (["Muon"] if optimizer == "muon" else [])
    if optimizer == "adamw":
        assert products is None, "AdamW's update does no matrix product"
        return
    d, layers = 32, 2  # the tiny preset: per layer, query, key, value and output d x d, the MLP's two d x 4d
    newton_schulz = 5 * layers * (4 * 6 * d**3 + 2 * (4 * d * d * 4 * d + 2 * d**3))
    assert float(products[1]) == pytest.approx(newton_schulz / 1e9, rel=0.01)
    model = float(products[2])
    assert abs(int(products[3]) - 100 * model / (model + float(products[1]))) <= 1  # the figures are rounded
