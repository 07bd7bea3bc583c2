"""The Inspect view's library side (minigpt/inspect.py): attention, the logit
lens, and the steps of a text, against the model and the sampler themselves."""

import math
from dataclasses import replace
from itertools import islice

import pytest
import torch
import torch.nn.functional as F

from minigpt.bpe import BPETokenizer
from minigpt.inspect import replay, score, token_labels, trace
from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate, processed_probabilities
from minigpt.tokenizer import CharTokenizer

CHARS = "\n abcdefghijklmnopqrstuvwxyz.,"
BLOCK = 24


@pytest.fixture(scope="module")
def tokenizer() -> CharTokenizer:
    return CharTokenizer(CHARS)


@pytest.fixture(scope="module")
def model() -> GPT:
    """Large random weights, so that attention and predictions are far from uniform."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=len(CHARS), block_size=BLOCK, d_model=32, n_heads=4, n_layers=3))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model.eval()


def tokens(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text)


def test_attention_rows_sum_to_one_and_never_look_ahead(model, tokenizer):
    attention = trace(model, tokens(tokenizer, "the cat sat on the mat")).attention
    L, H, T, _ = attention.shape
    assert (L, H, T) == (3, 4, 22)
    torch.testing.assert_close(attention.sum(-1), torch.ones(L, H, T))
    above = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)
    assert (attention[..., above] == 0).all()
    assert (attention[..., ~above] > 0).all()
    assert attention[0, 0, 0, 0] == 1  # the first position can only look at itself


def test_the_explicit_path_reproduces_the_models_output(model, tokenizer):
    ids = tokens(tokenizer, "a lazy dog, a quick fox.")
    logits, _ = model(torch.tensor([ids]))
    torch.testing.assert_close(trace(model, ids).logits, logits[0], atol=1e-5, rtol=1e-5)


def test_the_logit_lens_reads_the_stream_after_each_sublayer_and_ends_at_the_models_prediction(model, tokenizer):
    ids = tokens(tokenizer, "over the lazy dog")
    logits, _ = model(torch.tensor([ids]))
    probs = torch.softmax(logits[0], -1)
    top = probs.topk(3)
    traced = trace(model, ids)
    assert traced.lens_stages == ["embeddings", "attention 1", "mlp 1", "attention 2", "mlp 2", "attention 3", "mlp 3"]
    assert traced.lens_tokens.shape == traced.lens_probs.shape == (7, len(ids), 3)
    assert torch.equal(traced.lens_tokens[-1], top.indices)
    torch.testing.assert_close(traced.lens_probs[-1], top.values, atol=1e-5, rtol=1e-5)
    assert not torch.equal(traced.lens_tokens[0], traced.lens_tokens[-1])  # the sublayers change the prediction
    # The probability each stage gives the token that comes next; the last position has none.
    assert traced.lens_next.shape == (7, len(ids)) and traced.lens_next[:, -1].isnan().all()
    following = torch.tensor(ids[1:])
    torch.testing.assert_close(traced.lens_next[-1, :-1], probs[:-1].gather(-1, following[:, None])[:, 0])
    assert not torch.allclose(traced.lens_next[1, :-1], traced.lens_next[2, :-1])  # the MLP moves it too


@pytest.mark.parametrize("switch", [dict(attention=False), dict(mlp=False), dict(rope=True, tie_head=False)],
                         ids=["no attention", "no mlp", "rope untied"])
def test_the_lens_follows_the_sublayers_the_model_has(tokenizer, switch):
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=len(CHARS), block_size=BLOCK, d_model=32, n_heads=4, n_layers=2,
                            **switch)).eval()
    ids = tokens(tokenizer, "the cat")
    traced = trace(model, ids)
    kinds = [kind for kind in ("attention", "mlp") if switch.get(kind, True)]
    assert traced.lens_stages == ["embeddings"] + [f"{kind} {i}" for i in (1, 2) for kind in kinds]
    assert traced.attention.shape == (2 if "attention" in kinds else 0, 4, len(ids), len(ids))
    torch.testing.assert_close(traced.logits, model(torch.tensor([ids]))[0][0])


def test_tracing_leaves_the_model_as_it_was(model, tokenizer):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace(model, tokens(tokenizer, "the mat"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


SETTINGS = [
    SamplingSettings(temperature=1.0, top_p=0.95, seed=11),
    SamplingSettings(temperature=0.7, top_k=5, top_p=1.0, seed=12),
    SamplingSettings(temperature=1.3, top_k=8, top_p=0.6, repetition_penalty=1.5, seed=13),
    SamplingSettings(temperature=0, seed=14),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"seed{s.seed}")
def test_with_the_same_seed_the_view_shows_drawn_the_token_the_sampler_draws(model, tokenizer, settings):
    sampled = [p.token for p in islice(generate(model, tokenizer, "the ", settings), 18)]
    inspection = replay(model, tokenizer, "the ", settings, max_tokens=18)
    assert [step.token for step in inspection.steps] == sampled
    assert inspection.tokens == tokens(tokenizer, "the ") + sampled
    assert inspection.settings.seed == settings.seed
    for step in inspection.steps:
        assert step.processed > 0  # a drawn token is never one the settings removed
        assert any(c.token == step.token for c in step.candidates)


def test_replay_fills_the_block_at_most(model, tokenizer):
    settings = SamplingSettings(temperature=1.0, seed=3, max_new_tokens=40)
    sampled = [p.token for p in generate(model, tokenizer, "ab", settings)]
    assert len(replay(model, tokenizer, "ab", settings).steps) == BLOCK - 2  # no more than fill the block
    inspection = replay(model, tokenizer, "ab", settings, max_tokens=BLOCK)
    assert len(inspection.steps) == BLOCK - 2
    prompt = "abcdefghijklmnopqrstuvwxyz"  # past the block: its last BLOCK tokens, then one more
    sampled = [p.token for p in generate(model, tokenizer, prompt, replace(settings, max_new_tokens=1))]
    inspection = replay(model, tokenizer, prompt, settings)
    assert inspection.tokens == (tokens(tokenizer, prompt) + sampled)[-BLOCK:]
    assert inspection.prompt_length == BLOCK - 1
    assert [s.token for s in inspection.steps] == sampled and inspection.steps[0].position == BLOCK - 1


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"seed{s.seed}")
def test_scoring_a_sampled_text_shows_what_the_sampler_drew_it_from(model, tokenizer, settings):
    replayed = replay(model, tokenizer, "the ", settings, max_tokens=15)
    text = tokenizer.decode(s.token for s in replayed.steps)
    scored = score(model, tokenizer, "the ", text, settings)
    assert [s.token for s in scored.steps] == [s.token for s in replayed.steps]
    assert scored.prompt_length == 4 and scored.tokens == replayed.tokens
    for a, b in zip(scored.steps, replayed.steps, strict=True):
        assert a.position == b.position
        assert a.raw == pytest.approx(b.raw, abs=1e-5)
        assert a.processed == pytest.approx(b.processed, abs=1e-5)
        assert [c.token for c in a.candidates] == [c.token for c in b.candidates]


def test_candidates_show_kept_tokens_first_and_removed_ones_as_zero(model, tokenizer):
    settings = SamplingSettings(temperature=1.0, top_k=4, top_p=1.0)
    step = score(model, tokenizer, "the ", "cat", settings).steps[0]
    kept = [c for c in step.candidates if c.processed > 0]
    assert [c.processed > 0 for c in step.candidates] == [True] * 4 + [False] * (len(step.candidates) - 4)
    assert sum(c.processed for c in kept) == pytest.approx(1.0)
    raw_order = [c.raw for c in step.candidates]
    assert raw_order[:4] == sorted(raw_order[:4], reverse=True) and raw_order[4:] == sorted(raw_order[4:], reverse=True)
    assert min(raw_order[:4]) >= max(raw_order[4:])  # top-k removes the least likely


def test_perplexity_is_the_exponential_of_the_models_loss_on_the_text(model, tokenizer):
    prompt, text = "the cat", " sat on the mat"
    inspection = score(model, tokenizer, prompt, text, SamplingSettings())
    ids = torch.tensor([tokens(tokenizer, prompt + text)])
    with torch.no_grad():
        logits, _ = model(ids[:, :-1])
    loss = F.cross_entropy(logits[0, len(prompt) - 1:], ids[0, len(prompt):])
    assert inspection.perplexity == pytest.approx(math.exp(loss.item()), rel=1e-4)


def test_an_empty_prompt_starts_from_a_newline_as_the_sampler_does(model, tokenizer):
    inspection = score(model, tokenizer, "", "ab", SamplingSettings())
    assert inspection.tokens == tokens(tokenizer, "\nab") and inspection.prompt_length == 1
    assert [s.token for s in inspection.steps] == tokens(tokenizer, "ab")


def test_processed_probabilities_remove_tokens_and_sum_to_one():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(0))
    for settings in SETTINGS:
        probs = processed_probabilities(logits, settings)
        assert probs.shape == (50,) and float(probs.sum()) == pytest.approx(1.0)
    probs = processed_probabilities(logits, SamplingSettings(temperature=1.0, top_k=7, top_p=1.0))
    assert set(probs.nonzero().flatten().tolist()) == set(logits.topk(7).indices.tolist())
    greedy = processed_probabilities(logits, SamplingSettings(temperature=0))
    assert greedy[logits.argmax()] == 1 and int((greedy > 0).sum()) == 1


def test_token_labels_show_each_tokens_own_text():
    bpe = BPETokenizer.train("the theme of these, then thereafter " * 20, vocab_size=270)
    labels = token_labels(bpe, bpe.encode("then thé"))
    assert len(labels) < len("then thé")  # merged tokens hold several characters
    assert "".join(labels) == "then th\\xc3\\xa9"  # é, never seen, is two byte tokens: each shows its byte
    assert token_labels(CharTokenizer("abc"), [2, 0]) == ["c", "a"]
