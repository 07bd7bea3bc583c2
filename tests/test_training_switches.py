"""The model's switches as a user sets them, in the training config: a run under
each one saves, resumes exactly, and its model generates (with and without the
KV cache) and can be inspected; BPE too. DDP: tests/test_distributed.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_model_switches import SWITCHES

from minigpt import trainer as trainer_module
from minigpt.inspect import replay
from minigpt.plumbing import config as cfg
from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate
from minigpt.trainer import StepEvent, Trainer


def losses(trainer: Trainer) -> list[float]:
    return [e.loss for e in trainer.run() if isinstance(e, StepEvent)]


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
def test_a_run_under_each_switch_resumes_exactly_and_its_model_generates_and_inspects(switch, tmp_path, tiny_config,
                                                                                       corpus, monkeypatch):
    monkeypatch.setattr(trainer_module, "SAMPLE_TOKENS", 4)  # each evaluation's sample: the time this test takes
    config = cfg.apply_overrides(tiny_config, {**switch, "max_iters": 4, "eval_interval": 2, "dropout": 0.1})
    unbroken = losses(Trainer(config, corpus))
    first = Trainer(replace(config, max_iters=2), corpus, checkpoint_path=tmp_path / "m.pt")
    checkpoint_losses = losses(first)
    checkpoint = load_checkpoint(tmp_path / "m.pt")
    assert checkpoint.model_config == first.model_config
    assert all(getattr(checkpoint.model_config, key) == value for key, value in switch.items())
    resumed = Trainer(config, corpus, resume=checkpoint)
    assert checkpoint_losses + losses(resumed) == unbroken

    model, tokenizer = resumed.snapshot(), resumed.tokenizer
    settings = SamplingSettings(temperature=0.8, seed=5, max_new_tokens=36)  # past the block of 32: the cache refills
    cached = [p.token for p in generate(model, tokenizer, "First", settings)]
    assert cached == [p.token for p in generate(model, tokenizer, "First", settings, use_cache=False)]
    inspection = replay(model, tokenizer, "First", settings, max_tokens=10)
    assert [s.token for s in inspection.steps] == cached[:10]
    assert inspection.trace.lens_stages[-1] == ("mlp 2" if config.mlp else "attention 2" if config.attention
                                                else "embeddings")


def test_bpe_under_the_modern_switches(tiny_config, corpus):
    config = cfg.apply_overrides(tiny_config, {**SWITCHES["modern_swiglu"], "tokenizer": "bpe", "vocab_size": 300,
                                               "max_iters": 2, "eval_interval": 2})
    trainer = Trainer(config, corpus)
    assert len(losses(trainer)) == 2 and trainer.model_config.vocab_size == 300
    model = trainer.snapshot()
    settings = SamplingSettings(seed=2, max_new_tokens=20)
    cached = [p.token for p in generate(model, trainer.tokenizer, "Speak", settings)]
    assert cached == [p.token for p in generate(model, trainer.tokenizer, "Speak", settings, use_cache=False)]
    assert [s.token for s in replay(model, trainer.tokenizer, "Speak", settings).steps] == cached


@pytest.mark.parametrize(("assignment", "key", "value"), [
    ("rope=true", "rope", True), ('norm="rmsnorm"', "norm", "rmsnorm"), ("activation=swiglu", "activation", "swiglu"),
    ("tie_head=false", "tie_head", False), ("attention=false", "attention", False), ("mlp=false", "mlp", False),
])
def test_each_switch_is_set_with_set_and_reaches_the_model(assignment, key, value, corpus):
    config = cfg.resolve("tiny", assignments=[assignment], flags={"device": "cpu", "max_iters": 1})
    assert getattr(Trainer(config, corpus).model_config, key) == value


def test_a_bad_switch_value_names_the_key_and_what_is_allowed():
    with pytest.raises(cfg.ConfigError, match="norm = 'batchnorm': expected one of layernorm, rmsnorm"):
        cfg.resolve("tiny", assignments=["norm=batchnorm"])
    with pytest.raises(cfg.ConfigError, match="rope = true turns features in pairs: .* = 9 must be even"):
        cfg.resolve("tiny", assignments=["rope=true", "d_model=36", "n_heads=4"])
