"""Helpers for the TUI tests: a tiny model, waiting on the app, settings files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot

from minigpt.plumbing.experiments import BUILTINS
from minigpt.plumbing.lab_record import Budget, Record, save_record
from tui.app import MiniGPTApp
from tui.options import parse_options

TINY = ["--preset", "tiny", "--max-iters", "100000", "--eval-interval", "20", "--seed", "7"]
WAIT_LIMIT = 60.0  # seconds: only a guard against a hang, never a measurement


def make_app(*flags: str) -> MiniGPTApp:
    return MiniGPTApp(parse_options([*TINY, *flags]))


class Messages(list):
    """Every message the app handled, for message_hook."""

    def of(self, kind: type[Message]) -> list:
        return [m for m in self if isinstance(m, kind)]

    def notices(self, severity: str | None = None) -> list[str]:
        """The notifications shown, each once (a Notify message is handled by more than one node)."""
        shown = {m.notification.identity: m.notification for m in self.of(Notify)}
        return [n.message for n in shown.values() if severity is None or n.severity == severity]


async def wait_for(pilot: Pilot, condition: Callable[[], object], what: str = "condition") -> None:
    """Let the app run until condition() is true."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            app = pilot.app
            step = app.session.trainer.step if getattr(app, "session", None) else None
            raise AssertionError(f"timed out waiting for {what} ({app.run_state}, {step}, {app._exception!r})")
        await pilot.pause(0.02)


async def wait_loaded(pilot: Pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.run_state in ("idle", "error"), "the model to load")


async def complete(pilot: Pilot, prompt: str) -> None:
    """Type prompt and Enter into the prompt, pressing / first to focus it if need be
    (and waiting for the focus, so that no letter can act as a key); a newline is Ctrl+J."""
    field = pilot.app.query_one("#prompt")
    if pilot.app.focused is not field:
        await pilot.press("slash")
        await wait_for(pilot, lambda: pilot.app.focused is field, "the prompt's focus")
    await pilot.press(*("ctrl+j" if c == "\n" else c for c in prompt), "enter")


def completions_ended(app: MiniGPTApp) -> int:
    """How many completions have ended (finished, cancelled or failed)."""
    return len(app.query(".-prompt.-done"))


def write_settings(workdir: Path, text: str) -> Path:
    path = workdir / "minigpt.toml"
    path.write_text(text)
    return path


def fake_run_log(path: Path, d_model: int, steps: list[int], tokenizer: str = "char",
                 train_every: int = 0) -> None:
    """A run's metrics log as minigpt.plumbing.runlog writes it, with made-up figures
    (and a step line every train_every steps, if not 0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"event": "run", "format": 1, "started": 1_780_000_000.0, "resumed_from": 0, "elapsed": 0.0,
              "tokens": 0, "parameters": 1000 * d_model, "model": {"d_model": d_model, "n_layers": 2},
              "tokenizer": tokenizer, "vocab_size": 512, "time": 1_780_000_000.0}]
    for step in range(train_every, max(steps) + 1, train_every) if train_every else ():
        lines.append({"event": "step", "step": step, "loss": made_up_loss(step), "lr": 3e-3 * (1 - step / 2000),
                      "tokens_per_sec": 1000.0, "elapsed": step / 10, "tokens": step * 256})
    for step in steps:
        loss = made_up_loss(step) + 0.05 if train_every else 2.0 + 64 / d_model - step / 2000
        lines.append({"event": "eval", "step": step, "train_loss": loss, "val_loss": loss, "train_bpc": loss / 0.7,
                      "val_bpc": loss / 0.7, "tokens_per_sec": 1000.0, "elapsed": step / 10, "tokens": step * 256,
                      "sample": f"sample {step}", "time": 1_780_000_000.0 + step / 10})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def made_up_loss(step: int) -> float:
    """A falling curve with some noise, the same every time."""
    return 1.9 + 1.3 * 0.99 ** (step / 4) + 0.06 * ((step * 7919) % 13 - 6) / 6


def finished_run(workdir: Path, steps: int = 600) -> None:
    """A checkpoint of a run of TINY that has done its `steps` (weights as built, no training: the
    same everywhere), with a made-up metrics log of its losses and samples."""
    from minigpt.plumbing.session import open_session

    options = parse_options([*TINY, "--max-iters", str(steps)])
    session = open_session(options.config, options.explicit_keys, options.data, options.checkpoint)
    evaluations = list(range(100, steps + 1, 100))
    session.trainer.step = steps
    session.trainer.best_val_loss = min(made_up_loss(step) + 0.05 for step in evaluations)  # as the log has it
    list(session.trainer.save())
    fake_run_log(workdir / "checkpoints/model.jsonl", 32, evaluations, train_every=10)


def fake_lab_record(workdir: Path) -> None:
    """attention-and-mlp as the Lab leaves it once done, with made-up figures (for a picture that never changes)."""
    experiment = BUILTINS["attention-and-mlp"]
    folder = workdir / "checkpoints/lab" / experiment.name
    names = [v.name for v in experiment.variants]
    save_record(folder, Record(experiment, Budget(seconds=30), None, "data/input.txt", {}, tuple(names),
                               tuple(names)))
    for number, (name, final) in enumerate(zip(names, (1.92, 2.10, 2.53, 2.71), strict=True)):
        lines = [{"event": "run", "format": 1, "started": 1_780_000_000.0, "resumed_from": 0, "elapsed": 0.0,
                  "tokens": 0, "parameters": 800_000 - 200_000 * number, "model": {"d_model": 128, "n_layers": 4},
                  "tokenizer": "char", "vocab_size": 65, "chars_per_token": 1.0, "time": 1_780_000_000.0}]
        for step in range(10, 310, 10):
            bpc = final + 2.5 * (1 - step / 300) ** 2
            lines.append({"event": "step", "step": step, "loss": bpc * 0.6931, "lr": 0.004, "tokens_per_sec": 9000.0,
                          "elapsed": step / 10, "tokens": step * 768, "time": 1_780_000_000.0 + step / 10})
            if step % 150 == 0:
                lines.append({"event": "eval", "step": step, "train_loss": bpc * 0.6931, "val_loss": bpc * 0.6931,
                              "train_bpc": bpc, "val_bpc": bpc, "tokens_per_sec": 9000.0, "elapsed": step / 10,
                              "tokens": step * 768, "sample": f"ROMEO:\nthe {name} model wrote this at {step}",
                              "time": 1_780_000_000.0 + step / 10})
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        (folder / f"{name}.pt").write_bytes(b"")  # its checkpoint, as far as the view can tell
