import torch

from minigpt.model import GPT, KVCache, ModelConfig


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
