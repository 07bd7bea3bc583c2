import json
import os
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from minigpt.inspect import score
from minigpt.model import ModelConfig
from minigpt.plumbing.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minigpt.plumbing.corpus import Corpus
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate
from minigpt.trainer import StepEvent, Trainer

FROM_MAIN = Path(__file__).parent / "data" / "checkpoint_from_main.pt"


@pytest.fixture
def saved(tmp_path, tiny_config, corpus):
    trainer = Trainer(tiny_config, corpus, checkpoint_path=tmp_path / "model.pt")
    list(trainer.run())
    return tmp_path / "model.pt", trainer


def test_round_trip_keeps_everything(saved):
    path, trainer = saved
    loaded = load_checkpoint(path)
    assert loaded.step == trainer.step == 20
    assert loaded.tokenizer.characters == trainer.tokenizer.characters
    assert loaded.model_config == trainer.model_config
    assert loaded.train_config == trainer.config.to_dict()
    assert loaded.best_val_loss == trainer.best_val_loss
    model = loaded.build_model()
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


@pytest.mark.parametrize("keep", [0, 10, 44, 1000, -1])
def test_truncated_file_is_rejected_and_names_the_file(saved, keep):
    path, _ = saved
    data = path.read_bytes()
    cut = path.with_name("cut.pt")
    cut.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_checkpoint(cut)


def test_flipped_bytes_are_detected(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    generator = torch.Generator().manual_seed(0)
    for offset in torch.randint(44, len(data), (20,), generator=generator).tolist():
        corrupt = bytearray(data)
        corrupt[offset] ^= 0x5A
        bad = path.with_name("bad.pt")
        bad.write_bytes(bytes(corrupt))
        with pytest.raises(CheckpointError, match="bad.pt: checkpoint is corrupt"):
            load_checkpoint(bad)


def test_failed_save_leaves_previous_checkpoint_intact(saved, monkeypatch):
    path, trainer = saved
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        save_checkpoint(path, trainer.checkpoint())
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".tmp"] == []
    load_checkpoint(path)


def test_trainer_reports_a_failed_save_and_keeps_training(saved, monkeypatch):
    path, trainer = saved
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    events = list(trainer.save())
    assert type(events[0]).__name__ == "SaveFailedEvent"
    assert "Permission denied" in events[0].error and str(path) in events[0].error


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"model": Exploit()}))
    with pytest.raises(CheckpointError, match="not a MiniGPT checkpoint"):
        load_checkpoint(raw)
    # The same payload behind a valid header and checksum still must not run.
    import hashlib
    import io

    from minigpt.plumbing.checkpoint import _HEADER, FORMAT_VERSION, MAGIC

    buffer = io.BytesIO()
    torch.save({"model": Exploit()}, buffer)
    payload = buffer.getvalue()
    wrapped = tmp_path / "wrapped.pt"
    wrapped.write_bytes(_HEADER.pack(MAGIC, FORMAT_VERSION, hashlib.sha256(payload).digest()) + payload)
    with pytest.raises(CheckpointError, match="wrapped.pt: checkpoint payload cannot be read"):
        load_checkpoint(wrapped)
    assert not (tmp_path / "pwned").exists()


def test_future_version_foreign_file_and_directory(saved, tmp_path):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[8:12] = (99).to_bytes(4, "little")
    future = tmp_path / "future.pt"
    future.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="future.pt: checkpoint format 99 is newer"):
        load_checkpoint(future)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not a MiniGPT checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_compiled_model_checkpoints_load_into_plain_models_and_back(saved, tiny_config, corpus, tmp_path):
    path, trainer = saved
    # A state dict taken from a torch.compile wrapper carries "_orig_mod." prefixes.
    compiled_state = torch.compile(trainer.model).state_dict()
    assert all(key.startswith("_orig_mod.") for key in compiled_state)
    checkpoint = trainer.checkpoint()
    checkpoint.model_state = compiled_state
    save_checkpoint(tmp_path / "compiled.pt", checkpoint)
    plain = load_checkpoint(tmp_path / "compiled.pt").build_model()
    assert torch.equal(plain.head.weight, trainer.model.head.weight)
    # And a plain checkpoint resumes into a trainer that compiles its model.

    resumed = Trainer(replace(tiny_config, compile=True), corpus, resume=load_checkpoint(path))
    assert resumed.forward_model is not resumed.model
    assert torch.equal(resumed.model.head.weight, trainer.model.head.weight)


def test_a_checkpoint_from_before_the_model_switches_loads_computes_the_same_generates_and_resumes(tiny_config):
    """data/checkpoint_from_main.pt was written by main at b10f56a, before ModelConfig had its
    switches (20 tiny steps on Tiny Shakespeare, dropout 0.1); the .json beside it holds the
    logits that main computed from it. A model_config without a switch means the 2019 choice."""
    recorded = json.loads(FROM_MAIN.with_suffix(".json").read_text())
    checkpoint = load_checkpoint(FROM_MAIN)
    assert checkpoint.model_config == ModelConfig(vocab_size=58, block_size=16, d_model=16, n_heads=2, n_layers=1,
                                                  dropout=0.1)
    model, tokenizer = checkpoint.build_model().eval(), checkpoint.tokenizer
    with torch.no_grad():
        logits, _ = model(torch.tensor([tokenizer.encode(recorded["text"])]))
    torch.testing.assert_close(logits[0], torch.tensor(recorded["logits"]), rtol=1e-5, atol=1e-5)
    settings = SamplingSettings(max_new_tokens=30, seed=3)
    assert len([piece.token for piece in generate(model, tokenizer, "ROMEO:", settings)]) == 30
    assert len(score(model, tokenizer, "ROMEO:", "\nWhat say", settings).steps) == 9

    corpus = Corpus.from_text("".join(tokenizer.characters) * 50, "every character of the checkpoint")
    resumed = Trainer(replace(tiny_config, max_iters=24), corpus, resume=checkpoint)
    assert [e.step for e in resumed.run() if isinstance(e, StepEvent)] == [21, 22, 23, 24]
