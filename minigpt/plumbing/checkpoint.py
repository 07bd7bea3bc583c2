"""Checkpoint files: everything needed to sample from a model or resume its training.

On disk a checkpoint is a small header and a payload:

    b"MINIGPT\\n"      8 bytes, says what the file is
    version           4 bytes, little-endian format version
    sha256            32 bytes, digest of the payload
    payload           torch.save() of a dict of tensors, numbers and strings

The digest catches a file cut short or with flipped bytes, which torch.load
alone would often read without complaint. The payload is read with
torch.load(weights_only=True), which never runs code from the file.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.atomic import atomic_write
from minigpt.plumbing.errors import MiniGPTError
from minigpt.tokenizer import Tokenizer, tokenizer_from_dict

MAGIC = b"MINIGPT\n"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sI32s")
REQUIRED_KEYS = ("model", "model_config", "tokenizer", "step", "train_config")


class CheckpointError(MiniGPTError, ValueError):
    """The file is not a usable checkpoint; the message names it and says why."""


@dataclass
class Checkpoint:
    model_state: dict[str, torch.Tensor]
    model_config: ModelConfig
    tokenizer: Tokenizer
    step: int
    train_config: dict[str, Any]
    best_val_loss: float = float("inf")
    optimizer_state: dict | None = None
    rng_state: dict | None = None  # "torch", "cuda", "batches" generator states
    time_spent: float = 0.0  # seconds of a time budget used so far (train_config["time_budget"] is the whole)

    def build_model(self, device: torch.device | str = "cpu") -> GPT:
        model = GPT(self.model_config)
        model.load_state_dict(self.model_state)
        return model.to(device)


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write atomically: a crash mid-save leaves the previous file intact."""
    content = {
        "model": checkpoint.model_state,
        "model_config": checkpoint.model_config.to_dict(),
        "tokenizer": checkpoint.tokenizer.to_dict(),
        "step": checkpoint.step,
        "best_val_loss": checkpoint.best_val_loss,
        "optimizer": checkpoint.optimizer_state,
        "rng": checkpoint.rng_state,
        "train_config": checkpoint.train_config,
        "time_spent": checkpoint.time_spent,
    }
    buffer = io.BytesIO()
    torch.save(content, buffer)
    payload = buffer.getvalue()
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, hashlib.sha256(payload).digest())

    def write(f):
        f.write(header)
        f.write(payload)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    content = _read_payload(path)
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    try:
        model_config = ModelConfig(**content["model_config"])
        tokenizer = tokenizer_from_dict(content["tokenizer"])
        checkpoint = Checkpoint(
            model_state=_strip_compile_prefix(content["model"]),
            model_config=model_config,
            tokenizer=tokenizer,
            step=int(content["step"]),
            train_config=dict(content["train_config"]),
            best_val_loss=float(content.get("best_val_loss", float("inf"))),
            optimizer_state=content.get("optimizer"),
            rng_state=content.get("rng"),
            time_spent=float(content.get("time_spent", 0.0)),
        )
    except (TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: bad model description in checkpoint ({e})") from None
    if tokenizer.vocab_size != model_config.vocab_size:
        raise CheckpointError(
            f"{path}: tokenizer has {tokenizer.vocab_size} tokens, model expects {model_config.vocab_size}")
    _check_weights_fit(path, checkpoint)
    return checkpoint


def _check_weights_fit(path: Path, checkpoint: Checkpoint) -> None:
    """The weights must have the names and shapes of the model the checkpoint describes."""
    try:
        with torch.device("meta"):  # shapes only, nothing allocated
            expected = GPT(checkpoint.model_config).state_dict()
    except Exception as e:  # a nonsensical model description fails in many ways
        raise CheckpointError(f"{path}: bad model description in checkpoint ({e})") from None
    state = checkpoint.model_state
    wrong = [name for name, tensor in expected.items()
             if not isinstance(state.get(name), torch.Tensor) or state[name].shape != tensor.shape]
    wrong += sorted(set(state) - set(expected))
    if wrong:
        raise CheckpointError(f"{path}: the weights do not fit the model the checkpoint describes ({wrong[0]}); "
                              "use a file written by minigpt-train")


def _read_payload(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint; check the path, or train one with minigpt-train") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file") from None
    except PermissionError:
        raise CheckpointError(f"{path}: cannot be read (permission denied)") from None
    if len(data) < _HEADER.size or not data.startswith(MAGIC):
        raise CheckpointError(f"{path}: not a MiniGPT checkpoint (empty, truncated or another kind of file); "
                              "use a file written by minigpt-train")
    _, version, digest = _HEADER.unpack_from(data)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is newer than this MiniGPT reads ({FORMAT_VERSION}); upgrade MiniGPT"
        )
    payload = data[_HEADER.size:]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path}: checkpoint is corrupt or cut short (checksum mismatch); restore a copy "
                              "or train a new model with --from-scratch")
    try:
        content = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds; the file is bad whichever it is
        raise CheckpointError(f"{path}: checkpoint payload cannot be read ({type(e).__name__}); nothing in it "
                              "was run; use a file written by minigpt-train") from None
    if not isinstance(content, dict):
        raise CheckpointError(f"{path}: checkpoint payload is not a dictionary")
    return content


def _strip_compile_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # torch.compile wraps the model and prefixes every key with "_orig_mod.".
    prefix = "_orig_mod."
    return {k.removeprefix(prefix): v for k, v in state.items()}
