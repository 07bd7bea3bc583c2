import json
import os
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from minigpt.inspect import score
from minigpt.model import ModelConfig
from minigpt.plumbing import config as cfg
from minigpt.plumbing.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minigpt.plumbing.corpus import Corpus
from minigpt.plumbing.settings import SamplingSettings
from minigpt.plumbing.training_state import capture
from minigpt.sampling import generate, sample_text
from minigpt.trainer import StepEvent, Trainer

FROM_MAIN = Path(__file__).parent / "data" / "checkpoint_from_main.pt"
# Written by main at b498b35, before Muon and the new schedule: --preset tiny with d_model 16, 1 layer, block 16,
# batch 4, eval_iters 2, float32, 6 steps on the conftest's corpus. Its optimizer state is AdamW's.
BEFORE_MUON = Path(__file__).parent / "data" / "main_b498b35_tiny.pt"
# The losses of steps 7 to 9 when main at b498b35 resumed it with max_iters 9.
BEFORE_MUON_RESUMED = [3.4644267559051514, 3.4418253898620605, 3.431588888168335]


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
        save_checkpoint(path, capture(trainer))
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
    checkpoint = capture(trainer)
    checkpoint.model_state = compiled_state
    save_checkpoint(tmp_path / "compiled.pt", checkpoint)
    plain = load_checkpoint(tmp_path / "compiled.pt").build_model()
    assert torch.equal(plain.head.weight, trainer.model.head.weight)
    # And a plain checkpoint resumes into a trainer that compiles its model.

    resumed = Trainer(replace(tiny_config, compile=True), corpus, resume=load_checkpoint(path))
    assert resumed.forward_model is not resumed.model
    assert torch.equal(resumed.model.head.weight, trainer.model.head.weight)


@pytest.fixture
def before_muon(tmp_path) -> Path:
    path = tmp_path / "old.pt"
    shutil.copyfile(BEFORE_MUON, path)  # a resumed run saves over it
    return path


def test_a_checkpoint_from_before_muon_loads_generates_and_resumes_as_it_would_have(before_muon, corpus):
    old = load_checkpoint(before_muon)
    assert old.step == 6 and "optimizer" not in old.train_config and "schedule" not in old.train_config
    assert len(sample_text(old.build_model(), old.tokenizer, max_new_tokens=20, seed=0)) == 20
    config = cfg.TrainConfig(**{**old.train_config, "max_iters": 9})  # the keys it lacks: AdamW, cosine
    trainer = Trainer(config, corpus, checkpoint_path=before_muon, resume=old)
    assert trainer.notes == []
    losses = [e.loss for e in trainer.run() if isinstance(e, StepEvent)]
    assert losses == pytest.approx(BEFORE_MUON_RESUMED, abs=1e-5)  # AdamW's moments were restored
    assert load_checkpoint(before_muon).step == 9


def test_resuming_an_adamw_checkpoint_under_muon_starts_the_optimizer_afresh_and_says_so(before_muon, corpus):
    old = load_checkpoint(before_muon)
    config = replace(cfg.TrainConfig(**old.train_config), optimizer="muon", max_iters=9)
    trainer = Trainer(config, corpus, resume=old)
    assert trainer.notes == ["the checkpoint's optimizer state is adamw's and this run uses muon: the optimizer "
                             "state starts fresh (the weights are kept)"]
    assert torch.equal(trainer.model.token_embedding.weight, old.model_state["token_embedding.weight"])
    losses = [e.loss for e in trainer.run() if isinstance(e, StepEvent)]
    assert len(losses) == 3 and losses[0] == pytest.approx(BEFORE_MUON_RESUMED[0], abs=1e-5)
    back = Trainer(replace(config, optimizer="adamw", max_iters=12), corpus, resume=capture(trainer))
    assert back.notes == ["the checkpoint's optimizer state is muon's and this run uses adamw: the optimizer "
                          "state starts fresh (the weights are kept)"]


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
