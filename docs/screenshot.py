"""Make docs/images/minigpt-tui.svg, the picture on the README's front page:
minigpt-tui at 120x40, some way into training, a completion streamed beside the chart.

    python docs/screenshot.py --data data/input.txt            # Tiny Shakespeare: minigpt-train --download shakespeare
    python docs/screenshot.py --data data/input.txt --seconds 120 --prompt "ROMEO:"

The app runs headless (Textual's run_test) in a scratch folder, so no checkpoint,
history or settings file lands in the project; it trains with the `quick` preset
for --seconds, completes --prompt, and saves Textual's SVG of the screen.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from minigpt.plumbing.atomic import atomic_write_bytes

OUT = Path(__file__).parent / "images" / "minigpt-tui.svg"
SIZE = (120, 40)
LIMIT = 300.0  # seconds to wait for any one thing: a guard against a hang


async def until(pilot, condition, what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshot: timed out waiting for {what}")
        await pilot.pause(0.1)


async def shoot(data: Path, seconds: float, prompt: str) -> str:
    from tui.app import MiniGPTApp
    from tui.options import parse_options

    options = parse_options(["--preset", "quick", "--data", str(data), "--checkpoint", "checkpoints/model.pt",
                             "--settings", "minigpt.toml", "--from-scratch"])
    app = MiniGPTApp(options)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.run_state == "idle", "the model to load")
        await pilot.press("t")
        await until(pilot, lambda: app.run_state == "training", "training to start")
        started = time.monotonic()
        await until(pilot, lambda: time.monotonic() - started > seconds, f"{seconds:g} s of training")
        await pilot.press("slash", *prompt, "enter")
        await until(pilot, lambda: not app.generating and app.completions.list.query(".-prompt.-done"),
                    "the completion")
        await pilot.press("escape")  # out of the prompt: the Footer shows the training keys
        app.clear_notifications()
        await pilot.pause(1.5)  # a chart redraw with the latest points
        svg = app.export_screenshot(title="minigpt-tui")
        await pilot.press("x")
        await until(pilot, lambda: app.run_state in ("idle", "finished"), "training to stop")
    return svg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the text to train on (Tiny Shakespeare)")
    parser.add_argument("--seconds", type=float, default=90.0, help="training before the picture")
    parser.add_argument("--prompt", default="ROMEO:", help="the prompt completed in the picture")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data, out = args.data.resolve(), args.out.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        svg = asyncio.run(shoot(data, args.seconds, args.prompt))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, svg.encode("utf-8"))
    print(f"wrote {out} ({len(svg) / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
