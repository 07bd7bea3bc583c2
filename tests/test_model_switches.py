"""ModelConfig's switches, each alone and all together: the model stays causal,
its KV cache and its explicit attention agree with the full fused forward pass,
and its parameters and FLOPs are what a count by hand says."""

from __future__ import annotations

import math

import pytest
import torch

from minigpt.layers import swiglu_hidden_size
from minigpt.model import GPT, KVCache, ModelConfig, Recorder

V, BLOCK, C, H, L = 11, 16, 32, 4, 2
MODERN = dict(rope=True, norm="rmsnorm", activation="relu2", qk_norm=True, tie_head=False, zero_init=True,
              embed_norm=True, x0_mix=True)
SWITCHES = {
    "gpt2": {},
    "rope": dict(rope=True),
    "rmsnorm": dict(norm="rmsnorm"),
    "relu2": dict(activation="relu2"),
    "swiglu": dict(activation="swiglu"),
    "qk_norm": dict(qk_norm=True),
    "untied": dict(tie_head=False),
    "zero_init": dict(zero_init=True, tie_head=False),
    "embed_norm": dict(embed_norm=True),
    "x0_mix": dict(x0_mix=True),
    "modern": MODERN,
    "modern_swiglu": {**MODERN, "activation": "swiglu"},
    "no_mlp": dict(mlp=False),
    "no_attention": dict(attention=False),
    "bigram": dict(attention=False, mlp=False),
    "rope_no_attention": dict(rope=True, attention=False),
}
each_switch = pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())


def model_with(switch: dict, random_weights: bool = True) -> GPT:
    """With random_weights, every weight drawn large (zero-initialised ones too), so
    that attention and predictions are far from uniform and differences show."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=V, block_size=BLOCK, d_model=C, n_heads=H, n_layers=L, **switch))
    if random_weights:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.3)
    return model.eval()


@each_switch
def test_changing_a_later_token_never_changes_earlier_logits(switch):
    model = model_with(switch)
    idx = torch.randint(V, (1, BLOCK))
    changed = idx.clone()
    changed[0, 9:] = (changed[0, 9:] + 1) % V
    with torch.no_grad():
        before, after = model(idx)[0], model(changed)[0]
    assert torch.equal(before[0, :9], after[0, :9])
    assert not torch.allclose(before[0, 9:], after[0, 9:])


@each_switch
def test_decoding_with_the_cache_matches_the_full_forward_at_every_position(switch):
    """A prompt of 5, a chunk of 3, then one token at a time to the end of the block:
    with rotary positions each new key is turned by its own absolute position."""
    model = model_with(switch)
    idx = torch.randint(V, (2, BLOCK))
    with torch.no_grad():
        full, _ = model(idx)
        cache = KVCache(model.config, batch_size=2, device="cpu", dtype=torch.float32)
        pieces = [model(idx[:, :5], cache=cache)[0], model(idx[:, 5:8], cache=cache)[0]]
        pieces += [model(idx[:, i:i + 1], cache=cache)[0] for i in range(8, BLOCK)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-4, atol=1e-4)


@each_switch
def test_the_explicit_path_equals_the_fused_one_with_and_without_the_cache(switch):
    model = model_with(switch)
    idx = torch.randint(V, (2, BLOCK))
    with torch.no_grad():
        fused, _ = model(idx)
        recorder = Recorder()
        explicit, _ = model(idx, recorder=recorder)
        torch.testing.assert_close(explicit, fused, rtol=1e-4, atol=1e-4)
        cache = KVCache(model.config, batch_size=2, device="cpu", dtype=torch.float32)
        pieces = [model(idx[:, :7], cache=cache, recorder=Recorder())[0]]
        pieces += [model(idx[:, i:i + 1], cache=cache, recorder=Recorder())[0] for i in range(7, BLOCK)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), fused, rtol=1e-4, atol=1e-4)
    layers = L if model.config.attention else 0
    assert len(recorder.attention) == layers
    sublayers = [f"{kind} {i}" for i in range(1, L + 1) for kind, on in
                 (("attention", model.config.attention), ("mlp", model.config.mlp)) if on]
    assert [name for name, _ in recorder.stream] == ["embeddings", *sublayers]


@pytest.mark.parametrize("rope", [False, True], ids=["learned positions", "rope"])
def test_a_model_without_attention_cannot_see_earlier_tokens(rope):
    idx = torch.randint(V, (1, BLOCK))
    changed = idx.clone()
    changed[0, :10] = (changed[0, :10] + 1) % V  # every token before position 10
    for attention in (False, True):
        model = model_with(dict(attention=attention, rope=rope))
        with torch.no_grad():
            before, after = model(idx)[0], model(changed)[0]
        if attention:  # the check can fail: with attention, earlier tokens count
            assert not torch.allclose(before[0, 10:], after[0, 10:])
        else:
            assert torch.equal(before[0, 10:], after[0, 10:])


def by_hand(switch: dict) -> tuple[int, int]:
    """The parameters and the training FLOPs per token (PaLM: 6 per matmul weight,
    plus 12 x layers x d_model x context for the attention scores), counted here."""
    config = ModelConfig(vocab_size=V, **switch)
    attention, mlp = config.attention, config.mlp
    hidden = swiglu_hidden_size(C) if config.activation == "swiglu" else 4 * C
    mlp_matrices = (3 if config.activation == "swiglu" else 2) * C * hidden
    layer_matmul = attention * 4 * C * C + mlp * mlp_matrices  # qkv and proj; expand (gate) and proj
    layer_gains = (attention + mlp) * C + 2 * config.x0_mix  # a norm before each sublayer; the x0 weights
    matmul = L * layer_matmul + V * C  # the head reads the stream by a matmul, tied or not
    parameters = (V * C + (0 if config.rope else BLOCK * C) + L * (layer_matmul + layer_gains) + C  # final norm
                  + (0 if config.tie_head else V * C) + (C if config.embed_norm else 0))
    return parameters, 6 * matmul + 12 * (L if attention else 0) * C * BLOCK


@each_switch
def test_parameters_and_flops_are_what_a_count_by_hand_says(switch):
    model = model_with(switch, random_weights=False)
    assert (model.num_parameters(), model.flops_per_token()) == by_hand(switch)


def test_the_lab_variants_and_swiglu_have_the_parameters_they_claim():
    full, no_mlp = by_hand({})[0], by_hand(dict(mlp=False))[0]
    no_attention, bigram = by_hand(dict(attention=False))[0], by_hand(dict(attention=False, mlp=False))[0]
    assert full - no_mlp == L * (8 * C * C + C) and full - no_attention == L * (4 * C * C + C)
    assert bigram == V * C + BLOCK * C + C  # embeddings, positions and the final norm: a lookup table
    assert by_hand(dict(activation="swiglu"))[0] == pytest.approx(full, rel=0.05)  # comparable to GELU's MLP


def test_zero_init_starts_every_output_at_zero_and_predicts_uniformly():
    model = model_with(dict(zero_init=True, tie_head=False), random_weights=False)
    starting_at_zero = [block.attn.proj.weight for block in model.blocks] + [
        block.mlp.proj.weight for block in model.blocks] + [model.head.weight]
    assert all((w == 0).all() for w in starting_at_zero)
    assert (model.blocks[0].attn.qkv.weight != 0).any() and (model.token_embedding.weight != 0).any()
    _, loss = model(torch.randint(V, (2, 8)), torch.randint(V, (2, 8)))
    assert loss.item() == pytest.approx(math.log(V))


def test_an_untied_head_is_a_matrix_of_its_own():
    tied, untied = model_with({}, False), model_with(dict(tie_head=False), False)
    assert tied.head.weight is tied.token_embedding.weight
    assert untied.head.weight is not untied.token_embedding.weight
    assert untied.num_parameters() == tied.num_parameters() + V * C


def test_rotary_positions_replace_the_learned_ones():
    model = model_with(dict(rope=True), random_weights=False)
    assert model.position_embedding is None and "rotary.cos" not in model.state_dict()  # computed, never saved


@each_switch
def test_a_model_holding_another_ones_weights_computes_the_same(switch):
    """As Trainer.snapshot builds it: on the meta device, then given the weights."""
    model = model_with(switch)
    copy = GPT.holding(model.config, {k: v.clone() for k, v in model.state_dict().items()}).eval()
    assert (copy.head.weight is copy.token_embedding.weight) == model.config.tie_head
    idx = torch.randint(V, (1, BLOCK))
    with torch.no_grad():
        assert torch.equal(copy(idx)[0], model(idx)[0])


def test_a_config_without_the_switches_is_the_2019_model():
    """What a checkpoint written before the switches holds (see test_checkpoint for a real one)."""
    old = ModelConfig(vocab_size=V, block_size=BLOCK, d_model=C, n_heads=H, n_layers=L, dropout=0.1)
    model = GPT(old)
    assert model.position_embedding is not None and model.head.weight is model.token_embedding.weight
    assert isinstance(model.ln_final, torch.nn.LayerNorm) and model.blocks[0].mlp.gate is None
    assert sorted(model.state_dict()) == sorted(
        ["token_embedding.weight", "position_embedding.weight", "ln_final.weight", "head.weight"]
        + [f"blocks.{i}.{name}.weight" for i in range(L)
           for name in ("ln_attn", "attn.qkv", "attn.proj", "ln_mlp", "mlp.expand", "mlp.proj")])


@pytest.mark.parametrize(("key", "value", "message"), [
    ("norm", "batchnorm", "norm 'batchnorm': expected one of layernorm, rmsnorm"),
    ("activation", "tanh", "activation 'tanh': expected one of gelu, relu2, swiglu"),
    ("rope", True, "head size d_model / n_heads \\(9\\) must be even"),
])
def test_a_model_that_cannot_be_built_is_refused_with_the_setting_named(key, value, message):
    with pytest.raises(ValueError, match=message):
        GPT(ModelConfig(vocab_size=V, d_model=36, n_heads=4, **{key: value}))
