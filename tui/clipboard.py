"""Copying text out of the app: OSC 52 asks the terminal to set its clipboard,
and the same text goes to a file beside the checkpoint, for terminals that
ignore OSC 52. The completions pane and the chat view both copy this way."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from textual.widget import Widget

from minigpt.plumbing.atomic import atomic_write_bytes


def copy_path(checkpoint: Path) -> Path:
    """checkpoints/model.pt -> checkpoints/model.copied.txt (absolute: where the app started)"""
    return checkpoint.with_name(checkpoint.stem + ".copied.txt").absolute()


def copy_out(widget: Widget, text: str, path: Path) -> None:
    """Copy text with OSC 52, and write it to path in a thread worker of widget's."""
    widget.app.copy_to_clipboard(text)
    widget.run_worker(partial(_write, widget, text, path), thread=True, exit_on_error=False, group="files",
                      name="copy to a file")


def _write(widget: Widget, text: str, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, text.encode("utf-8", "replace"))
    except OSError as e:
        widget.notify(f"Copied {len(text):,} characters with OSC 52; {path} could not be written "
                      f"({e.strerror or e})", severity="warning")
        return
    widget.notify(f"Copied {len(text):,} characters (OSC 52: if your terminal allows apps to set the "
                  f"clipboard) and wrote them to {path}", title="Copied")
