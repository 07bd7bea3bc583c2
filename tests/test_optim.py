"""The optimizers (AdamW; Muon with AdamW) and the learning-rate schedules."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from minigpt.model import GPT, ModelConfig
from minigpt.optim import (
    MOMENTUM_START,
    NEWTON_SCHULZ_STEPS,
    MuonWithAdamW,
    hidden_matrices,
    learning_rate,
    make_optimizer,
    muon_momentum,
    orthogonalise,
    orthogonalise_all,
    set_step_hyperparameters,
)
from minigpt.plumbing import config as cfg

CPU = torch.device("cpu")


@pytest.fixture
def muon_config(tiny_config) -> cfg.TrainConfig:
    return replace(tiny_config, optimizer="muon", muon_momentum_warmup=4, muon_weight_decay=0.01)


def tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(ModelConfig(vocab_size=13, block_size=8, d_model=16, n_heads=2, n_layers=2))


def batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(5)
    return [(torch.randint(13, (4, 8), generator=generator), torch.randint(13, (4, 8), generator=generator))
            for _ in range(count)]


def train(model, optimizer, config, data, first_step: int = 0) -> list[float]:
    losses = []
    for step, (x, y) in enumerate(data, start=first_step):
        set_step_hyperparameters(optimizer, config, step, learning_rate(step, config))
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


# --- Newton-Schulz ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(32, 128), (128, 32), (48, 48)])
def test_muon_turns_a_random_matrix_into_a_nearly_orthogonal_one(shape):
    generator = torch.Generator().manual_seed(0)
    left, _ = torch.linalg.qr(torch.randn(shape[0], min(shape), generator=generator))
    right, _ = torch.linalg.qr(torch.randn(shape[1], min(shape), generator=generator))
    spread = torch.linspace(1.0, 30.0, min(shape))  # singular values from 1 to 30...
    matrix = left @ torch.diag(spread) @ right.T
    after = torch.linalg.svdvals(orthogonalise(matrix[None])[0])
    assert after.min() > 0.6 and after.max() < 1.25  # ...all brought near 1 (the iteration aims near, not at, 1)
    assert torch.allclose(orthogonalise(matrix[None])[0], left @ right.T, atol=0.35)  # the same directions


def test_matrices_of_one_shape_are_orthogonalised_together_as_each_would_be_alone():
    generator = torch.Generator().manual_seed(1)
    matrices = [torch.randn(8, 24, generator=generator) for _ in range(3)]
    matrices += [torch.randn(24, 8, generator=generator), torch.randn(8, 8, generator=generator)]
    together = orthogonalise_all(matrices, torch.float32)
    for matrix, result in zip(matrices, together, strict=True):
        assert result.shape == matrix.shape
        assert torch.allclose(result, orthogonalise(matrix[None])[0], atol=1e-6)


def test_newton_schulz_multiplies_over_the_shorter_side_of_each_matrix():
    # An m x n matrix (m <= n) costs 4m²n + 2m³ FLOPs an iteration (X Xᵀ, its square, and back to m x n);
    # over the longer side it would be 4mn² + 2n³, for a 192 x 768 MLP matrix eleven times as much.
    shapes = [(32, 128), (128, 32), (48, 48)]
    matrices = [torch.randn(*shape) for shape in shapes]
    with FlopCounterMode(display=False) as counter:
        orthogonalise_all(matrices, torch.float32)
    m, n = zip(*(sorted(shape) for shape in shapes), strict=True)
    expected = sum(NEWTON_SCHULZ_STEPS * (4 * a * a * b + 2 * a**3) for a, b in zip(m, n, strict=True))
    assert counter.get_total_flops() == expected


def test_newton_schulz_runs_in_the_dtype_asked_for(monkeypatch):
    seen = []
    monkeypatch.setattr("minigpt.optim.orthogonalise", lambda x: seen.append(x.dtype) or x)
    matrix = torch.randn(4, 6)
    assert orthogonalise_all([matrix], torch.bfloat16)[0].dtype == torch.float32  # back in the weights' format
    assert seen == [torch.bfloat16]


# --- which weights Muon moves -----------------------------------------------------------------------

def test_muon_moves_the_matrices_in_the_blocks_and_adamw_the_rest(muon_config):
    model = tiny_gpt()
    optimizer = make_optimizer(model, muon_config, CPU)
    assert isinstance(optimizer, MuonWithAdamW)
    muon = {id(p) for group in optimizer.muon.param_groups for p in group["params"]}
    adamw = {id(p) for group in optimizer.adamw.param_groups for p in group["params"]}
    names = {id(p): name for name, p in model.named_parameters()}
    assert sorted(names[i] for i in muon) == sorted(
        f"blocks.{layer}.{matrix}.weight" for layer in range(2)
        for matrix in ("attn.qkv", "attn.proj", "mlp.expand", "mlp.proj"))
    assert {names[i] for i in adamw} == {name for name in names.values() if not name.startswith("blocks.")} | {
        f"blocks.{layer}.{norm}.weight" for layer in range(2) for norm in ("ln_attn", "ln_mlp")}
    assert not muon & adamw  # every weight moved by one optimizer, once (the tied head is the embedding)


def test_a_new_head_or_gain_goes_to_adamw_and_a_new_linear_layer_in_a_block_to_muon(muon_config):
    model = tiny_gpt()
    model.head = nn.Linear(16, 13, bias=False)  # an untied head
    model.blocks[0].gain = nn.Parameter(torch.ones(16))  # a new gain
    model.blocks[0].gate = nn.Linear(16, 16)  # a new map inside a block, with a bias
    optimizer = make_optimizer(model, muon_config, CPU)
    muon = {id(p) for group in optimizer.muon.param_groups for p in group["params"]}
    assert id(model.blocks[0].gate.weight) in muon
    assert not {id(model.head.weight), id(model.blocks[0].gain), id(model.blocks[0].gate.bias)} & muon
    assert len(muon) + sum(len(g["params"]) for g in optimizer.adamw.param_groups) == len(list(model.parameters()))


@pytest.mark.parametrize("switches", [
    {"rope": True, "norm": "rmsnorm", "activation": "swiglu", "qk_norm": True, "tie_head": False, "zero_init": True,
     "embed_norm": True, "x0_mix": True},
    {"activation": "relu2", "attention": False},
    {"attention": False, "mlp": False},  # a bigram model: nothing for Muon
])
def test_every_weight_of_a_model_with_the_switches_is_moved_once(muon_config, switches):
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=13, block_size=8, d_model=16, n_heads=2, n_layers=2, **switches))
    optimizer = make_optimizer(model, muon_config, CPU)
    groups = optimizer.param_groups
    moved = [id(p) for group in groups for p in group["params"]]
    assert sorted(moved) == sorted(id(p) for p in model.parameters())
    assert isinstance(optimizer, MuonWithAdamW) == bool(hidden_matrices(model))
    before = [p.detach().clone() for p in model.parameters()]
    train(model, optimizer, muon_config, batches(2))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_muon_orthogonalises_query_key_and_value_each_on_its_own(muon_config):
    model = tiny_gpt()
    config = replace(muon_config, muon_weight_decay=0.0, muon_momentum_warmup=0)
    optimizer = make_optimizer(model, config, CPU)
    qkv, expand = model.blocks[0].attn.qkv.weight, model.blocks[0].mlp.expand.weight
    before = {"qkv": qkv.detach().clone(), "expand": expand.detach().clone()}
    set_step_hyperparameters(optimizer, config, 0, config.lr)
    x, y = batches(1)[0]
    model(x, y)[1].backward()
    gradients = {"qkv": qkv.grad.clone(), "expand": expand.grad.clone()}
    optimizer.step()
    lr, momentum = config.muon_lr, config.muon_momentum
    first = {name: g.lerp(torch.zeros_like(g).lerp(g, 1 - momentum), momentum) for name, g in gradients.items()}
    pieces = [orthogonalise(piece[None])[0] for piece in first["qkv"].chunk(3)]  # query, key, value
    assert torch.allclose(before["qkv"] - qkv.detach(), lr * torch.cat(pieces), atol=1e-7)
    assert not torch.allclose(torch.cat(pieces), orthogonalise(first["qkv"][None])[0], atol=1e-2)
    # expand is tall (64 x 16): its orthogonal update is scaled by sqrt(64 / 16) = 2 to match a wide one's
    assert torch.allclose(before["expand"] - expand.detach(), lr * 2 * orthogonalise(first["expand"][None])[0],
                          atol=1e-7)


# --- training and resuming --------------------------------------------------------------------------

def test_muon_lowers_the_loss(muon_config):
    model = tiny_gpt()
    config = replace(muon_config, max_iters=30)
    data = batches(1) * 30  # one batch again and again: the loss must fall
    losses = train(model, make_optimizer(model, config, CPU), config, data)
    assert losses[-1] < losses[0] - 0.5


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_a_resumed_optimizer_continues_exactly_like_an_unbroken_one(muon_config, optimizer):
    config = replace(muon_config, optimizer=optimizer)
    data = batches(8)
    unbroken = tiny_gpt()
    unbroken_losses = train(unbroken, make_optimizer(unbroken, config, CPU), config, data)

    first = tiny_gpt()
    first_losses = train(first, make_optimizer(first, config, CPU), config, data[:4])
    saved = io.BytesIO()
    torch.save({"model": first.state_dict(), "optimizer": make_optimizer_state(first, config, data[:4])}, saved)
    saved.seek(0)
    state = torch.load(saved, weights_only=True)  # as a checkpoint is read: no code from the file runs
    second = tiny_gpt(seed=99)
    second.load_state_dict(state["model"])
    optimizer = make_optimizer(second, config, CPU)
    optimizer.load_state_dict(state["optimizer"])
    second_losses = train(second, optimizer, config, data[4:], first_step=4)

    assert first_losses + second_losses == unbroken_losses
    for name, tensor in unbroken.state_dict().items():
        assert torch.equal(second.state_dict()[name], tensor), name


def make_optimizer_state(model, config, data) -> dict:
    """The state of an optimizer that trained a fresh copy of model's start on data (as the run saved it)."""
    copy = tiny_gpt()
    optimizer = make_optimizer(copy, config, CPU)
    train(copy, optimizer, config, data)
    for mine, theirs in zip(model.parameters(), copy.parameters(), strict=True):
        assert torch.equal(mine, theirs)
    return optimizer.state_dict()


def test_the_config_wins_over_a_loaded_state(muon_config):
    model = tiny_gpt()
    optimizer = make_optimizer(model, muon_config, CPU)
    state = optimizer.state_dict()
    changed = replace(muon_config, weight_decay=0.3, beta2=0.9, muon_weight_decay=0.2)
    resumed = make_optimizer(model, changed, CPU)
    resumed.load_state_dict(state)
    from minigpt.optim import apply_config

    apply_config(resumed, changed)
    matrices, gains = resumed.adamw.param_groups
    assert (matrices["weight_decay"], gains["weight_decay"], matrices["betas"]) == (0.3, 0.0, (0.9, 0.9))
    assert {group["weight_decay"] for group in resumed.muon.param_groups} == {0.2}


# --- the schedules ---------------------------------------------------------------------------------

def test_muon_momentum_warms_up_then_holds(muon_config):
    config = replace(muon_config, muon_momentum=0.95, muon_momentum_warmup=10)
    values = [muon_momentum(step, config) for step in range(15)]
    assert values[0] == MOMENTUM_START
    assert values[5] == pytest.approx((MOMENTUM_START + 0.95) / 2)
    assert values[10:] == [0.95] * 5


def test_the_step_sets_muons_rate_on_adamws_schedule(muon_config):
    config = replace(muon_config, lr=0.01, muon_lr=0.05)
    optimizer = make_optimizer(tiny_gpt(), config, CPU)
    set_step_hyperparameters(optimizer, config, 2, 0.004)
    assert {g["lr"] for g in optimizer.adamw.param_groups} == {0.004}
    assert [g["lr"] for g in optimizer.muon.param_groups] == pytest.approx([0.02, 0.02])  # 0.05 x 0.004 / 0.01
    assert {g["momentum"] for g in optimizer.muon.param_groups} == {muon_momentum(2, config)}


def wsd(tiny_config, **changes) -> cfg.TrainConfig:
    return replace(tiny_config, schedule="wsd", lr=1.0, min_lr=0.01, warmup_iters=10, max_iters=110,
                   decay_share=0.4, **changes)


def test_wsd_over_steps_warms_up_holds_then_decays_in_a_line_to_the_floor(tiny_config):
    config = wsd(tiny_config)
    rates = [learning_rate(step, config) for step in range(111)]
    assert rates[0] < rates[5] < rates[9] < 1.0  # warmup
    assert rates[10:71] == [1.0] * 61  # stable: 60% of the 100 steps after warmup
    falls = [a - b for a, b in zip(rates[70:], rates[71:], strict=False)]
    assert falls == pytest.approx([0.99 / 40] * 40)  # a straight line...
    assert rates[110] == pytest.approx(0.01)  # ...to the floor at max_iters


def test_wsd_over_a_time_budget_follows_the_share_of_the_budget_used(tiny_config):
    config = wsd(tiny_config, time_budget=60.0)
    assert learning_rate(0, config, progress=0.0) == pytest.approx(1 / 11)  # still warming up
    assert learning_rate(500, config, progress=0.3) == 1.0
    assert learning_rate(500, config, progress=0.6) == 1.0
    assert learning_rate(500, config, progress=0.8) == pytest.approx(0.01 + 0.5 * 0.99)
    assert learning_rate(500, config, progress=1.0) == pytest.approx(0.01)


def test_cosine_is_still_the_default_and_unchanged(tiny_config):
    assert tiny_config.schedule == "cosine" and tiny_config.optimizer == "adamw"
    config = replace(tiny_config, lr=1.0, min_lr=0.1, warmup_iters=10, max_iters=110)
    assert learning_rate(60, config) == pytest.approx(0.55)  # half way down the cosine
    assert learning_rate(500, config, progress=0.5) == pytest.approx(0.55)
    assert isinstance(make_optimizer(tiny_gpt(), config, CPU), torch.optim.AdamW)
