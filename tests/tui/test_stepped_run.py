"""The keys' requests as the training worker honours them between two steps
(tui.stepped_run): the app's tests press the keys; these follow each request
through a pause, one wait at a time, with no thread and no clock."""

from __future__ import annotations

from collections.abc import Callable

from tui.stepped_run import SteppedRun


class ScriptedWorker:
    """A worker whose waits while paused each run the next action of a script (what the UI thread does
    meanwhile), so a test decides what happens during each wait."""

    def __init__(self, script: list[Callable[[], object]]) -> None:
        self.script = script
        self.is_cancelled = False
        self.cancelled_event = self  # the run waits on worker.cancelled_event.wait(seconds)
        self.waits = 0

    def wait(self, seconds: float) -> bool:
        self.waits += 1
        if self.script:
            self.script.pop(0)()
        return self.is_cancelled

    def cancel(self) -> None:
        self.is_cancelled = True


class Recorded(SteppedRun):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def run(self, worker) -> None:
        raise NotImplementedError  # these tests call between_steps() as a run would, after a step

    def stop(self) -> None:
        self.calls.append("stop")
        self.resume()

    def save(self) -> None:
        self.calls.append("save")

    def on_pause(self, paused: bool) -> None:
        self.calls.append("paused" if paused else "resumed")


def test_a_running_run_saves_when_asked_and_goes_on_without_waiting():
    run, worker = Recorded(), ScriptedWorker([])
    run.between_steps(worker)
    run.request_save()
    run.between_steps(worker)
    run.between_steps(worker)
    assert run.calls == ["save"] and worker.waits == 0


def test_a_paused_run_holds_the_step_saves_while_paused_and_goes_on_when_resumed():
    run = Recorded()
    worker = ScriptedWorker([lambda: None, run.request_save, lambda: None, run.resume])
    run.pause()
    run.between_steps(worker)
    assert run.calls == ["paused", "save", "resumed"]
    assert worker.waits == 4  # held until the resume, and not one wait longer


def test_quitting_while_paused_ends_the_pause_and_stops_the_run():
    run = Recorded()
    worker = ScriptedWorker([lambda: None, lambda: None])
    worker.script.append(worker.cancel)  # the app is quitting: the worker is cancelled during the third wait
    run.pause()
    run.between_steps(worker)
    assert run.calls == ["paused", "resumed", "stop"] and worker.waits == 3


def test_quitting_while_running_stops_the_run_after_this_step():
    run, worker = Recorded(), ScriptedWorker([])
    worker.cancel()
    run.between_steps(worker)
    assert run.calls == ["stop"] and worker.waits == 0
