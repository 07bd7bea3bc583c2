"""The one driver of a training session (minigpt.plumbing.driver), which
minigpt-train and the app both run: every event goes to the run's metrics log
and to the front end's watcher, by kind; and the run's summary, said once."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from minigpt.plumbing.driver import Driver, Watcher, deliver
from minigpt.plumbing.session import open_session
from minigpt.trainer import EvalEvent, SavedEvent, SaveFailedEvent, StepEvent


class Recorder(Watcher):
    """Keeps what it is handed, in order, by the method that got it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_step(self, event):
        self.calls.append(("step", event.step))

    def on_eval(self, event):
        self.calls.append(("eval", event.step))

    def on_final(self, event):
        self.calls.append(("final", event.step))

    def on_saved(self, event):
        self.calls.append(("saved", event.step))

    def on_save_failed(self, event):
        self.calls.append(("save failed", event.error))

    def on_log_failed(self, message):
        self.calls.append(("log failed", message))


@pytest.fixture
def session(tmp_path, tiny_config, corpus_text):
    (tmp_path / "input.txt").write_text(corpus_text)
    return open_session(replace(tiny_config, max_iters=10, eval_interval=5), set(), tmp_path / "input.txt",
                        tmp_path / "model.pt")


def test_each_event_reaches_the_log_and_the_watcher_in_order(tmp_path, session):
    watcher = Recorder()
    Driver(session, watcher).run()
    assert watcher.calls == [("eval", 0), *[("step", s) for s in range(1, 6)], ("eval", 5), ("saved", 5),
                             *[("step", s) for s in range(6, 11)], ("eval", 10), ("final", 10), ("saved", 10)]
    log = [json.loads(line) for line in (tmp_path / "model.jsonl").read_text().splitlines()]
    assert [(r["event"], r["step"]) for r in log if r["event"] != "run"] == [
        ("eval", 0), ("eval", 5), ("step", 10), ("eval", 10), ("final", 10)]


def test_a_save_while_no_run_goes_on_reaches_the_watcher_and_leaves_the_log_alone(tmp_path, session):
    watcher = Recorder()
    Driver(session, watcher).save()
    assert watcher.calls == [("saved", 0)]
    assert not (tmp_path / "model.jsonl").exists(), "a session that never trains adds nothing to the log"


def test_between_runs_after_each_event_and_can_stop_the_run(session):
    watcher, seen = Recorder(), []

    def between():
        seen.append(watcher.calls[-1])
        if watcher.calls[-1] == ("step", 3):
            session.trainer.request_stop()

    Driver(session, watcher, keep_log=False).run(between=between)
    assert seen == watcher.calls and watcher.calls[-1] == ("saved", 3)


def test_a_log_that_cannot_be_written_is_said_once_and_training_goes_on(tmp_path, session):
    (tmp_path / "blocker").write_text("a file, not a folder")
    watcher = Recorder()
    Driver(session, watcher, log=tmp_path / "blocker" / "model.jsonl").run()
    failures = [message for kind, message in watcher.calls if kind == "log failed"]
    assert len(failures) == 1 and "cannot write the metrics log" in failures[0]
    assert session.trainer.step == 10


def test_every_kind_of_event_has_its_method():
    watcher = Recorder()
    for event in (StepEvent(1, 2, 3.0, 0.1, 1.0, 1.0, 1.0, 0.5), EvalEvent(1, 3.0, 3.0, 4.0, 4.0, 3.0, "x", 1.0),
                  SavedEvent(1, "m.pt"), SaveFailedEvent(1, "m.pt", "disk full")):
        deliver(event, watcher)
    assert [kind for kind, _ in watcher.calls] == ["step", "eval", "saved", "save failed"]


def test_the_summary_says_what_the_run_is(tmp_path, session, tiny_config):
    new, model = session.summary()
    assert new.startswith(f"training from scratch on {tmp_path / 'input.txt'} (")
    assert "char tokenizer" in new and "characters per token" in new
    assert model.startswith("model: ") and f"d_model {tiny_config.d_model}" in model and "device cpu, float32" in model
    list(session.trainer.run())
    resumed = open_session(replace(tiny_config, max_iters=20), set(), tmp_path / "input.txt", tmp_path / "model.pt")
    assert resumed.summary()[0].startswith(f"resuming {tmp_path / 'model.pt'} at step 10 on ")
