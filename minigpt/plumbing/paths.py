"""Where a MiniGPT project keeps its files, relative to the working directory:

    data/input.txt          the text to train on (without it, the built-in corpus)
    checkpoints/model.pt    the model; beside it model.jsonl, its metrics log, and
                            model.completions.jsonl, its completions (minigpt.plumbing.completions)
    checkpoints/lab/        the Lab's experiments, a folder each (minigpt.plumbing.lab_record)
    minigpt.toml            the sampling settings (and the app's [tui] and [keymap])
    minigpt-history.jsonl   the app's prompt history (minigpt.plumbing.history)

Every command takes flags to put them elsewhere. Of the JSON-lines files, only
the metrics logs are runs (is_run_log): minigpt-runs and the app's runs
picker read a folder's runs by that rule.
"""

from pathlib import Path

DEFAULT_DATA = Path("data/input.txt")
DEFAULT_CHECKPOINT = Path("checkpoints/model.pt")
DEFAULT_LAB = Path("checkpoints/lab")
DEFAULT_SETTINGS = Path("minigpt.toml")
DEFAULT_HISTORY = Path("minigpt-history.jsonl")

RUN_LOG_SUFFIX = ".jsonl"  # a checkpoint's metrics log: model.pt -> model.jsonl
COMPLETIONS_SUFFIX = ".completions.jsonl"  # a checkpoint's completions: model.pt -> model.completions.jsonl
CONVERSATIONS_SUFFIX = ".chat.jsonl"  # a checkpoint's conversations: model.pt -> model.chat.jsonl


def is_run_log(path: Path) -> bool:
    """Whether path is a run's metrics log: a .jsonl file that is none of the
    project's other JSON-lines files (a checkpoint's completions and conversations, the prompt history)."""
    return (path.suffix == RUN_LOG_SUFFIX and not path.name.endswith((COMPLETIONS_SUFFIX, CONVERSATIONS_SUFFIX))
            and path.name != DEFAULT_HISTORY.name)
