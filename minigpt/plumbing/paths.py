"""Where a MiniGPT project keeps its files, relative to the working directory:

    data/input.txt          the text to train on (without it, the built-in corpus)
    checkpoints/model.pt    the model; beside it model.jsonl, its metrics log, and
                            model.completions.jsonl, its completions (minigpt.plumbing.completions)
    checkpoints/lab/        the Lab's experiments, a folder each (minigpt.plumbing.lab_record)
    minigpt.toml            the sampling settings (and the app's [tui] and [keymap])
    minigpt-history.jsonl   the app's prompt history (minigpt.plumbing.history)

Every command takes flags to put them elsewhere.
"""

from pathlib import Path

DEFAULT_DATA = Path("data/input.txt")
DEFAULT_CHECKPOINT = Path("checkpoints/model.pt")
DEFAULT_LAB = Path("checkpoints/lab")
DEFAULT_SETTINGS = Path("minigpt.toml")
DEFAULT_HISTORY = Path("minigpt-history.jsonl")
