"""Messages from the worker threads to the app. Each is posted (never
call_from_thread, which would make the worker wait for the UI), and each
carries a whole batch, so the UI handles a few per second."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # these modules import PyTorch, which the app loads after its first paint
    from minigpt.plumbing.lab import LabEvent
    from minigpt.plumbing.runs import Run
    from minigpt.plumbing.session import TrainingSession
    from minigpt.plumbing.settings import LoadedSettings
    from minigpt.trainer import EvalEvent, FinalScoreEvent, SavedEvent, SaveFailedEvent, StepEvent


class LoadProgress(Message):
    """What the start-up loader is doing now."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SettingsLoaded(Message):
    def __init__(self, loaded: LoadedSettings) -> None:
        super().__init__()
        self.loaded = loaded


class SessionReady(Message):
    def __init__(self, session: TrainingSession) -> None:
        super().__init__()
        self.session = session


class RunHistory(Message):
    """A resumed run's earlier sessions, read from its metrics log, and what could not be read of it."""

    def __init__(self, run: Run | None, warnings: list[str]) -> None:
        super().__init__()
        self.run = run
        self.warnings = warnings


class TrainingProgress(Message):
    """The steps completed since the last message, as (step, seconds, loss, learning rate), and the
    latest of them."""

    def __init__(self, losses: list[tuple[int, float, float, float]], last: StepEvent) -> None:
        super().__init__()
        self.losses = losses
        self.last = last


class Evaluated(Message):
    def __init__(self, event: EvalEvent) -> None:
        super().__init__()
        self.event = event


class FinalScored(Message):
    """The run reached its end and its last weights were scored on the whole validation split."""

    def __init__(self, event: FinalScoreEvent) -> None:
        super().__init__()
        self.event = event


class CheckpointSaved(Message):
    def __init__(self, event: SavedEvent) -> None:
        super().__init__()
        self.event = event


class CheckpointSaveFailed(Message):
    def __init__(self, event: SaveFailedEvent) -> None:
        super().__init__()
        self.event = event


class RunLogFailed(Message):
    """The run's metrics log cannot be written (reported once; training goes on)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class TrainingPaused(Message):
    """The training thread has stopped pulling steps (or started again)."""

    def __init__(self, paused: bool) -> None:
        super().__init__()
        self.paused = paused


class CompletionText(Message, bubble=False):  # for the completions pane alone
    """More text of the completion tagged `tag`; stale tags are dropped."""

    def __init__(self, tag: int, text: str) -> None:
        super().__init__()
        self.tag = tag
        self.text = text


class CompletionEnded(Message, bubble=False):
    def __init__(self, tag: int, tokens: int, seconds: float) -> None:
        super().__init__()
        self.tag = tag
        self.tokens = tokens
        self.seconds = seconds


class SpeedCacheCorrected(Message):
    """The run trained at a speed the speed cache had wrong; the cache now holds it (minigpt.plumbing.speedcheck)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class LabUpdate(Message):
    """What a Lab experiment has done since the last message (minigpt.plumbing.lab's events), oldest first."""

    def __init__(self, events: list[LabEvent]) -> None:
        super().__init__()
        self.events = events
