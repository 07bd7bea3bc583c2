import pytest
import torch
import torch.nn.functional as F

from minigpt.model import GPT, KVCache, ModelConfig, Recorder, explicit_attention, fused_attention


def small_model(**overrides) -> GPT:
    torch.manual_seed(0)
    config = ModelConfig(**{"vocab_size": 11, "block_size": 16, "d_model": 32, "n_heads": 4, "n_layers": 2,
                            **overrides})
    return GPT(config).eval()


def test_logits_shape_and_loss_at_start_is_near_uniform():
    model = small_model()
    idx, targets = torch.randint(11, (3, 16)), torch.randint(11, (3, 16))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 16, 11)
    assert abs(loss.item() - torch.log(torch.tensor(11.0)).item()) < 0.3


def test_changing_a_later_token_never_changes_earlier_logits():
    model = small_model()
    idx = torch.randint(11, (1, 16))
    changed = idx.clone()
    changed[0, 9:] = (changed[0, 9:] + 1) % 11
    before, _ = model(idx)
    after, _ = model(changed)
    assert torch.equal(before[0, :9], after[0, :9])
    assert not torch.allclose(before[0, 9:], after[0, 9:])


def test_head_is_tied_to_token_embedding():
    model = small_model()
    assert model.head.weight is model.token_embedding.weight
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_residual_projections_get_smaller_init():
    model = small_model(n_layers=8, d_model=64)
    residual_std = model.blocks[0].mlp.proj.weight.std().item()
    other_std = model.blocks[0].mlp.expand.weight.std().item()
    assert abs(other_std - 0.02) < 0.003
    assert abs(residual_std - 0.02 / 4) < 0.001  # 1 / sqrt(2 * 8)


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=11, block_size=16, d_model=64, n_heads=4, n_layers=2)).train()
    batch = torch.randint(11, (4, 17))
    x, y = batch[:, :-1], batch[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_cached_forward_matches_full_forward():
    model = small_model()
    idx = torch.randint(11, (1, 12))
    full, _ = model(idx)
    cache = KVCache(model.config, batch_size=1, device="cpu", dtype=torch.float32)
    first, _ = model(idx[:, :7], cache=cache)
    rest = [model(idx[:, i:i + 1], cache=cache)[0] for i in range(7, 12)]
    stepwise = torch.cat([first, *rest], dim=1)
    torch.testing.assert_close(stepwise, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("new", "cached"), [(9, 0), (4, 5), (1, 8)],
                         ids=["no cache", "a chunk after 5", "one after 8"])
def test_the_explicit_attention_equals_the_fused_kernel(new, cached):
    """q for the newest positions, k and v for all of them so far, as with a KV cache."""
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, new, 8, generator=generator) * 2  # scores far from uniform
    k, v = (torch.randn(2, 3, cached + new, 8, generator=generator) for _ in range(2))
    output, weights = explicit_attention(q, k, v)
    torch.testing.assert_close(output, fused_attention(q, k, v), rtol=1e-5, atol=1e-5)
    assert weights.shape == (2, 3, new, cached + new)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, new))
    for row in range(new):  # the query at position cached + row sees the keys up to it, never after
        assert (weights[..., row, cached + row + 1:] == 0).all() and (weights[..., row, :cached + row + 1] > 0).all()


def test_with_a_recorder_the_model_takes_the_explicit_path_and_computes_the_same():
    model = small_model()
    idx = torch.randint(11, (2, 12))
    recorder = Recorder()
    with torch.no_grad():
        fused, _ = model(idx)
        explicit, _ = model(idx, recorder=recorder)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-5)
    assert [w.shape for w in recorder.attention] == [(2, 4, 12, 12)] * 2
    assert [name for name, _ in recorder.stream] == ["embeddings", "attention 1", "mlp 1", "attention 2", "mlp 2"]
    torch.testing.assert_close(model.next_token_logits(recorder.stream[-1][1]), fused)


def test_attention_weights_are_the_softmax_of_the_scaled_scores():
    q = torch.tensor([0.0, 2.0]).view(1, 1, 1, 2)  # the query of the second of two positions
    k = torch.tensor([[1.0, 1.0], [2.0, 0.0]]).view(1, 1, 2, 2)
    _, weights = explicit_attention(q, k, k)
    torch.testing.assert_close(weights.view(2), F.softmax(torch.tensor([2.0, 0.0]) / 2 ** 0.5, dim=-1))
