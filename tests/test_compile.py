"""compile = true: torch.compile for training and evaluation, compiled once, cached, and a clear
fallback where the CPU has no C++ compiler to build it with."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from minigpt.evaluate import FixedWindows, score_split
from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.compiler import NO_CXX, compile_model, has_cpp_compiler

CPU = torch.device("cpu")


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=13, block_size=16, d_model=16, n_heads=2, n_layers=1))


def test_without_a_cpp_compiler_the_model_runs_uncompiled_and_says_why(monkeypatch):
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", ("no-such-compiler-for-minigpt-tests",))
    model = tiny_gpt()
    compiled, note = compile_model(model, CPU)
    assert compiled is model
    assert note == NO_CXX and "C++ compiler" in note and "uncompiled" in note
    x = torch.randint(13, (2, 16))
    assert compiled(x, x)[1].isfinite()  # and it still trains


def test_a_run_asked_to_compile_without_a_cpp_compiler_trains_uncompiled_and_says_why(monkeypatch, tiny_config,
                                                                                       corpus):
    import torch._inductor.config

    from minigpt.trainer import StepEvent, Trainer

    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", ("no-such-compiler-for-minigpt-tests",))
    trainer = Trainer(replace(tiny_config, compile=True, max_iters=3), corpus)
    assert trainer.notes == [NO_CXX] and trainer.eval_model is trainer.model
    assert [e.step for e in trainer.run() if isinstance(e, StepEvent)] == [1, 2, 3]


@pytest.fixture
def inductor_cache(request, monkeypatch):
    """The compiled code kept between test runs (in pytest's own cache folder): the first run compiles."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(request.config.cache.mkdir("torchinductor")))
    torch._dynamo.reset()
    counters.clear()  # what this test compiles, counted from zero
    yield
    torch._dynamo.reset()


@pytest.mark.skipif(not has_cpp_compiler(), reason="no C++ compiler for torch.compile on the CPU")
def test_training_and_both_evaluations_compile_once_and_score_as_the_uncompiled_model(inductor_cache):
    model = tiny_gpt()
    compiled, note = compile_model(model, CPU)
    assert note is None and compiled is not model
    optimizer = torch.optim.AdamW(model.parameters())
    generator = torch.Generator().manual_seed(1)
    data = torch.randint(13, (300,), generator=generator, dtype=torch.uint8)
    windows = FixedWindows(data, batch_size=4, block_size=16, batches=2, seed=0)

    def train_and_evaluate() -> tuple[float, float]:
        for _ in range(2):
            x, y = (torch.randint(13, (4, 16), generator=generator) for _ in range(2))
            compiled(x, y)[1].backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        scores = (windows.loss(compiled, CPU, torch.float32),
                  score_split(compiled, data, 16, 4, 1.0, CPU, torch.float32).loss)
        model.train()
        return scores

    train_and_evaluate()
    compiled_frames = counters["frames"]["total"]
    assert compiled_frames == 2  # training, and evaluation without gradients
    fixed, whole = train_and_evaluate()
    assert counters["frames"]["total"] == compiled_frames  # nothing compiled again
    model.eval()
    assert fixed == pytest.approx(windows.loss(model, CPU, torch.float32), abs=1e-4)
    assert whole == pytest.approx(score_split(model, data, 16, 4, 1.0, CPU, torch.float32).loss, abs=1e-4)


@pytest.mark.skipif(not has_cpp_compiler(), reason="no C++ compiler for torch.compile on the CPU")
def test_a_compiled_run_compiles_training_and_evaluation_once_each(inductor_cache, tiny_config, corpus):
    from minigpt.trainer import EvalEvent, FinalScoreEvent, Trainer

    trainer = Trainer(replace(tiny_config, compile=True, max_iters=6, eval_interval=2), corpus)
    assert trainer.notes == [] and trainer.eval_model is not trainer.model
    events = list(trainer.run())
    assert [e.step for e in events if isinstance(e, EvalEvent)] == [0, 2, 4, 6]
    assert isinstance(events[-1], FinalScoreEvent)
    assert counters["frames"]["total"] == 2  # four evaluations and the final score: no compilation again
