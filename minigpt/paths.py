"""Where a MiniGPT project keeps its files, relative to the working directory:

    data/input.txt          the text to train on (without it, the built-in corpus)
    checkpoints/model.pt    the model, and checkpoints/model.jsonl, its metrics log
    minigpt.toml            the sampling settings (and the app's [tui] and [keymap])

Every command takes flags to put them elsewhere.
"""

from pathlib import Path

DEFAULT_DATA = Path("data/input.txt")
DEFAULT_CHECKPOINT = Path("checkpoints/model.pt")
DEFAULT_SETTINGS = Path("minigpt.toml")
