import math
from dataclasses import replace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigpt.model import GPT, KVCache, ModelConfig
from minigpt.plumbing.settings import SamplingSettingError, SamplingSettings, field_specs
from minigpt.sampling import Piece, _StopFilter, _TokenPicker, generate, sample_text, start_tokens
from minigpt.tokenizer import CharTokenizer, UnknownCharactersError

CHARS = "\n abcdefghijklmnopqrstuvwxyz.,"
BLOCK = 16


@pytest.fixture(scope="module")
def tokenizer() -> CharTokenizer:
    return CharTokenizer(CHARS)


@pytest.fixture(scope="module")
def model() -> GPT:
    """A small model with large random weights, so that its greedy output
    depends on the context and is far from constant."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=len(CHARS), block_size=BLOCK, d_model=32, n_heads=2, n_layers=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model.eval()


def tokens_of(model, tokenizer, prompt, **kw) -> list[int]:
    use_cache = kw.pop("use_cache", True)
    return [p.token for p in generate(model, tokenizer, prompt, SamplingSettings(**kw), use_cache)]


def text_of(model, tokenizer, prompt, **kw) -> str:
    return "".join(p.text for p in generate(model, tokenizer, prompt, SamplingSettings(**kw)))


def reference_greedy(model: GPT, tokens: list[int], n: int) -> list[int]:
    """The documented windowing policy, written out plainly: attend over the
    window; when it grows past block_size, restart it from the last half block."""
    tokens, start, out = list(tokens), 0, []
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model(torch.tensor([tokens[start:]]))
            token = int(logits[0, -1].argmax())
            tokens.append(token)
            out.append(token)
            if len(tokens) - start > BLOCK:
                start = len(tokens) - BLOCK // 2
    return out


# --- KV cache ------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "a", "the cat sat", "exactly sixteen.", "a prompt much longer than the block"])
def test_greedy_with_cache_equals_without_cache_well_past_block_size(model, tokenizer, prompt):
    n = 8 * BLOCK
    cached = tokens_of(model, tokenizer, prompt, temperature=0, max_new_tokens=n)
    uncached = tokens_of(model, tokenizer, prompt, temperature=0, max_new_tokens=n, use_cache=False)
    assert len(cached) == n
    assert len(set(cached)) > 5  # the test means something only if the output varies
    assert cached == uncached
    assert cached == reference_greedy(model, start_tokens(prompt, tokenizer, BLOCK), n)


def test_sampling_with_cache_equals_without_cache(model, tokenizer):
    kw = dict(temperature=1.0, top_k=10, top_p=0.9, repetition_penalty=1.3, seed=5, max_new_tokens=3 * BLOCK)
    assert tokens_of(model, tokenizer, "abc", **kw) == tokens_of(model, tokenizer, "abc", use_cache=False, **kw)


def test_cached_logits_match_full_forward(model):
    tokens = torch.randint(0, len(CHARS), (1, BLOCK), generator=torch.Generator().manual_seed(1))
    full, _ = model(tokens)
    cache = KVCache(model.config, 1, "cpu", torch.float32)
    first, _ = model(tokens[:, :5], cache=cache)
    steps = [model(tokens[:, i : i + 1], cache=cache)[0] for i in range(5, BLOCK)]
    torch.testing.assert_close(torch.cat([first, *steps], dim=1), full, rtol=1e-4, atol=1e-5)


# --- what generate promises --------------------------------------------------------


def test_one_piece_per_token_and_text_matches_tokens(model, tokenizer):
    pieces = list(generate(model, tokenizer, "ab", SamplingSettings(max_new_tokens=40, seed=1)))
    assert len(pieces) == 40 and all(isinstance(p, Piece) for p in pieces)
    assert "".join(p.text for p in pieces) == tokenizer.decode([p.token for p in pieces])


def test_temperature_zero_is_deterministic_whatever_the_seed(model, tokenizer):
    texts = {text_of(model, tokenizer, "the", temperature=0, seed=s, max_new_tokens=50) for s in (-1, 0, 1, 2)}
    assert len(texts) == 1


def test_same_seed_same_text_other_seed_other_text(model, tokenizer):
    kw = dict(temperature=1.5, top_p=1.0, max_new_tokens=60)
    first = text_of(model, tokenizer, "the", seed=42, **kw)
    assert text_of(model, tokenizer, "the", seed=42, **kw) == first
    assert text_of(model, tokenizer, "the", seed=43, **kw) != first


def test_seeded_keeps_a_set_seed_and_draws_a_fresh_one_for_minus_one():
    assert SamplingSettings(seed=7).seeded() == SamplingSettings(seed=7)
    drawn = SamplingSettings(seed=-1, top_k=5).seeded()
    assert drawn.seed >= 0 and drawn.top_k == 5
    seeds = [SamplingSettings(seed=-1).seeded().seed for _ in range(100)]
    assert all(0 <= seed < 2**32 for seed in seeds), "at most 10 digits to read back and type, not 19"
    assert len(set(seeds)) == len(seeds)  # two the same: once in 2**32 / 4950


def test_the_seed_drawn_for_minus_one_repeats_the_text(model, tokenizer):
    settings = SamplingSettings(temperature=1.5, top_p=1.0, max_new_tokens=60, seed=-1).seeded()
    first = "".join(p.text for p in generate(model, tokenizer, "the", settings))
    again = text_of(model, tokenizer, "the", temperature=1.5, top_p=1.0, max_new_tokens=60, seed=settings.seed)
    assert again == first


def test_generate_draws_a_minus_one_seed_through_seeded(model, tokenizer, monkeypatch):
    monkeypatch.setattr(SamplingSettings, "seeded", lambda self: replace(self, seed=1234))
    kw = dict(temperature=1.5, top_p=1.0, max_new_tokens=60)
    assert text_of(model, tokenizer, "the", seed=-1, **kw) == text_of(model, tokenizer, "the", seed=1234, **kw)


def test_top_k_one_and_tiny_top_p_are_greedy(model, tokenizer):
    greedy = tokens_of(model, tokenizer, "ab", temperature=0, max_new_tokens=50)
    assert tokens_of(model, tokenizer, "ab", temperature=2.0, top_k=1, top_p=1.0, seed=3, max_new_tokens=50) == greedy
    assert tokens_of(model, tokenizer, "ab", temperature=2.0, top_p=1e-6, seed=3, max_new_tokens=50) == greedy


def test_sampling_leaves_model_and_global_state_alone(model, tokenizer):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    pieces = generate(model, tokenizer, "ab", SamplingSettings(max_new_tokens=30, seed=0))
    next(pieces)
    # Between two tokens the caller is not left in inference mode.
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    list(pieces)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_training_mode_with_dropout_is_refused():
    model = GPT(ModelConfig(vocab_size=len(CHARS), block_size=BLOCK, d_model=32, n_heads=2, n_layers=1, dropout=0.1))
    with pytest.raises(ValueError, match="eval"):
        generate(model, CharTokenizer(CHARS), "a", SamplingSettings())


def test_closing_the_generator_stops_it(model, tokenizer):
    pieces = generate(model, tokenizer, "a", SamplingSettings(max_new_tokens=1000, seed=0))
    taken = [next(pieces) for _ in range(3)]
    pieces.close()
    assert len(taken) == 3
    assert list(pieces) == []


def test_should_stop_ends_the_stream(model, tokenizer):
    count = 0

    def should_stop() -> bool:
        return count >= 7

    for _ in generate(model, tokenizer, "a", SamplingSettings(max_new_tokens=1000, seed=0), should_stop=should_stop):
        count += 1
    assert count == 7


def test_sample_text(model, tokenizer):
    text = sample_text(model, tokenizer, max_new_tokens=25, seed=0)
    assert len(text) == 25 and set(text) <= set(CHARS)
    assert sample_text(model, tokenizer, max_new_tokens=25, seed=0) == text


# --- stop strings ----------------------------------------------------------------------


def test_stop_string_ends_generation_and_is_not_shown(model, tokenizer):
    full = text_of(model, tokenizer, "the", temperature=0, max_new_tokens=100)
    stop = full[40:43]
    at = full.find(stop)
    out = text_of(model, tokenizer, "the", temperature=0, max_new_tokens=100, stop=[stop])
    assert out == full[:at]
    assert stop not in out


def test_earliest_of_several_stop_strings_wins(model, tokenizer):
    full = text_of(model, tokenizer, "the", temperature=0, max_new_tokens=100)
    late, early = full[60:63], full[30:32]
    out = text_of(model, tokenizer, "the", temperature=0, max_new_tokens=100, stop=[late, early])
    assert out == full[: min(full.find(late), full.find(early))]


def test_held_back_text_is_shown_when_generation_ends_without_a_stop(model, tokenizer):
    full = text_of(model, tokenizer, "the", temperature=0, max_new_tokens=50)
    stop = full[-1] + "\x00"  # begins like the last character, never completes
    assert text_of(model, tokenizer, "the", temperature=0, max_new_tokens=50, stop=[stop]) == full


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet="abc", max_size=30), stops=st.lists(st.text(alphabet="abc", min_size=1, max_size=4),
                                                                 min_size=1, max_size=3))
def test_stop_filter_shows_exactly_the_text_before_the_first_stop(text, stops):
    f = _StopFilter(tuple(stops))
    shown = []
    for ch in text:
        piece, stopped = f.feed(ch)
        shown.append(piece)
        if stopped:
            break
    else:
        shown.append(f.flush())
    # A stop is found as soon as its last character arrives, so the earliest ending wins.
    found = [(text.find(s) + len(s), text.find(s)) for s in stops if s in text]
    expected = text[: min(found)[1]] if found else text
    assert "".join(shown) == expected


# --- top-k, top-p, repetition penalty ---------------------------------------------------------


def draw(settings: SamplingSettings, logits: torch.Tensor, n: int = 3000) -> set[int]:
    picker = _TokenPicker(settings, logits.numel(), [], seed=0)
    return {picker.pick(logits) for _ in range(n)}


LOGITS = torch.randn(30, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_top_k_only_samples_the_k_most_likely(k):
    allowed = set(torch.topk(LOGITS, k).indices.tolist())
    assert draw(SamplingSettings(temperature=1.0, top_k=k, top_p=1.0), LOGITS) == allowed


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8, 0.95])
def test_top_p_only_samples_the_smallest_set_reaching_p(p):
    probs, order = torch.sort(torch.softmax(LOGITS, -1), descending=True)
    size = int((probs.cumsum(0) < p).sum()) + 1
    allowed = set(order[:size].tolist())
    assert draw(SamplingSettings(temperature=1.0, top_p=p), LOGITS, n=5000) == allowed


def test_top_p_applies_after_temperature_and_top_k():
    logits = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.05, 0.05]))
    assert draw(SamplingSettings(temperature=1.0, top_p=0.8), logits) == {0, 1, 2}
    assert draw(SamplingSettings(temperature=1.0, top_k=2, top_p=0.8), logits) == {0, 1}
    # Greedy ignores both.
    assert draw(SamplingSettings(temperature=0, top_k=3, top_p=0.5), logits, n=10) == {0}


def test_repetition_penalty_steers_away_from_seen_tokens():
    logits = torch.tensor([3.0, 2.5, -1.0, -1.2])
    picker = _TokenPicker(SamplingSettings(temperature=0, repetition_penalty=2.0), 4, context=[0], seed=0)
    assert picker.pick(logits) == 1  # 3.0 / 2 < 2.5
    assert picker.pick(logits) == 0  # both seen now: 1.5 > 1.25
    negative = torch.tensor([-1.0, -1.5])
    picker = _TokenPicker(SamplingSettings(temperature=0, repetition_penalty=2.0), 2, context=[0], seed=0)
    assert picker.pick(negative) == 1  # -1.0 * 2 < -1.5


# --- prompts --------------------------------------------------------------------------------------


def test_empty_prompt_starts_from_a_newline(tokenizer):
    assert start_tokens("", tokenizer, BLOCK) == tokenizer.encode("\n")
    assert start_tokens("", CharTokenizer("xyz"), BLOCK) == [0]


def test_long_prompt_keeps_its_last_block_size_tokens(tokenizer):
    prompt = "abcdefghijklmnopqrstuvwxyz"
    assert start_tokens(prompt, tokenizer, BLOCK) == tokenizer.encode(prompt[-BLOCK:])


def test_unknown_characters_are_listed_before_anything_is_generated(model, tokenizer):
    with pytest.raises(UnknownCharactersError) as e:
        generate(model, tokenizer, "héllo WORLD", SamplingSettings())
    assert e.value.characters == ["é", "W", "O", "R", "L", "D"]
    assert "'é'" in str(e.value)


# --- settings validation --------------------------------------------------------------------


INVALID = [
    ("temperature", -0.1), ("temperature", math.nan), ("temperature", math.inf), ("temperature", 101),
    ("temperature", "1"), ("temperature", True), ("temperature", 10**400),
    ("top_k", -1), ("top_k", 2.5), ("top_k", 10**7), ("top_k", True),
    ("top_p", 0), ("top_p", -0.5), ("top_p", 1.01), ("top_p", math.nan),
    ("repetition_penalty", 0), ("repetition_penalty", -1.0), ("repetition_penalty", 11), ("repetition_penalty", None),
    ("max_new_tokens", 0), ("max_new_tokens", -5), ("max_new_tokens", 10**9), ("max_new_tokens", 10.0),
    ("seed", -2), ("seed", 2**63), ("seed", 1.5),
    ("stop", ("",)), ("stop", "abc"), ("stop", (1,)), ("stop", None),
]


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_setting_is_rejected_with_its_name_and_range(name, value):
    with pytest.raises(SamplingSettingError, match="expected") as e:
        SamplingSettings(**{name: value})
    assert str(e.value).startswith(f"{name} = ")


def test_valid_edges_are_accepted():
    SamplingSettings(temperature=0, top_k=0, top_p=1, repetition_penalty=10, max_new_tokens=1, seed=0, stop=["x"])
    SamplingSettings(temperature=100, top_k=1_000_000, top_p=1e-9, max_new_tokens=100_000, seed=2**63 - 1)


def test_stop_given_as_a_list_becomes_a_tuple():
    settings = SamplingSettings(stop=["a", "bc"])
    assert settings.stop == ("a", "bc")
    assert settings.to_dict()["stop"] == ["a", "bc"]


@pytest.mark.parametrize(("name", "value", "message"), [
    ("temperature", 500.0, "temperature = 500.0: expected a number from 0 (greedy) to 100"),
    ("top_k", -1, "top_k = -1: expected an integer from 0 (off) to 1000000"),
    ("top_p", 0, "top_p = 0: expected a number in (0, 1]"),
    ("repetition_penalty", 11, "repetition_penalty = 11: expected a number in (0, 10]"),
    ("max_new_tokens", 0, "max_new_tokens = 0: expected an integer from 1 to 100000"),
    ("seed", -2, "seed = -2: expected an integer from -1 (random) to 9223372036854775807"),
    ("stop", ("a", ""), "stop = ['a', '']: expected a list of non-empty strings"),
])
def test_the_message_says_what_is_allowed(name, value, message):
    with pytest.raises(SamplingSettingError) as e:
        SamplingSettings(**{name: value})
    assert str(e.value) == message


def test_every_setting_has_a_label_and_a_one_line_help():
    for spec in field_specs().values():
        assert spec.metadata["label"] and spec.metadata["help"]
        assert "\n" not in spec.metadata["help"]
