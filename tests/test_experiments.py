"""The Lab's experiments: the built-ins, a learner's own file (and what a bad one gets), and the
conclusions written from given results."""

from __future__ import annotations

from dataclasses import replace

import pytest

from minigpt.plumbing.conclusions import NOISE_BPC, conclude
from minigpt.plumbing.experiments import (
    BUILTINS,
    MAX_VARIANTS,
    Experiment,
    ExperimentError,
    Variant,
    base_config,
    check_runnable,
    find_experiment,
    load_experiment,
    variant_config,
)


def test_every_builtin_is_listed_with_its_question_and_at_least_two_variants():
    assert {"attention-and-mlp", "width", "depth", "heads", "context", "tokenizer", "then-and-now"} <= set(BUILTINS)
    for experiment in BUILTINS.values():
        assert experiment.question.endswith("?")
        assert len(experiment.variants) >= 2
        assert len({v.name for v in experiment.variants}) == len(experiment.variants)


@pytest.mark.parametrize("name", [name for name, e in BUILTINS.items() if not e.missing_keys()])
def test_each_builtin_variant_changes_only_what_it_names(name):
    experiment = BUILTINS[name]
    base = base_config(experiment)
    for variant in experiment.variants:
        config = variant_config(base, experiment, variant)
        changed = {key for key, value in config.to_dict().items() if base.to_dict()[key] != value}
        assert changed <= set(variant.overrides)


def test_the_scales_go_from_small_to_large():
    assert [v.overrides["d_model"] for v in BUILTINS["width"].variants] == [32, 64, 128, 256]
    assert [v.overrides["n_layers"] for v in BUILTINS["depth"].variants] == [1, 2, 4, 8]
    assert [v.overrides["n_heads"] for v in BUILTINS["heads"].variants] == [1, 2, 4, 8]
    assert [v.overrides["block_size"] for v in BUILTINS["context"].variants] == [8, 32, 128, 256]
    assert [v.name for v in BUILTINS["tokenizer"].variants] == ["char", "bpe-256", "bpe-512", "bpe-1024"]


def test_an_experiment_whose_keys_are_missing_is_listed_but_says_what_it_needs():
    experiment = Experiment("future", "Does it help?", (Variant("a"), Variant("b", {"warp_drive": True})))
    assert experiment.missing_keys() == ["warp_drive"]
    with pytest.raises(ExperimentError, match="future needs the config keys warp_drive"):
        check_runnable(experiment)
    modern = BUILTINS["then-and-now"]
    for missing in modern.missing_keys():
        assert any(missing in v.overrides for v in modern.variants)


def test_a_builtin_is_found_by_name_and_a_file_by_path(tmp_path):
    assert find_experiment("width") is BUILTINS["width"]
    path = tmp_path / "mine.toml"
    path.write_text('question = "Small or big?"\n[variants.small]\nd_model = 32\n[variants.big]\nd_model = 64\n')
    assert find_experiment(str(path)).name == "mine"
    with pytest.raises(ExperimentError, match="no experiment named 'widht' \\(did you mean 'width'\\?\\)"):
        find_experiment("widht")


def test_a_learners_file_is_read_in_order_with_its_base(tmp_path):
    path = tmp_path / "dropout.toml"
    path.write_text('\ufeffquestion = "Does dropout help on a small text?"\ncompare = "scale"\n'
                    '[base]\nd_model = 64\n'
                    '[variants.none]\ndropout = 0.0\n[variants.some]\ndropout = 0.1\n[variants.much]\ndropout = 0.3\n')
    experiment = load_experiment(path)
    assert experiment.name == "dropout" and experiment.compare == "scale" and experiment.source == str(path)
    assert [v.name for v in experiment.variants] == ["none", "some", "much"]
    config = variant_config(base_config(experiment), experiment, experiment.variants[1])
    assert (config.d_model, config.dropout) == (64, 0.1)


def test_the_users_set_comes_after_the_base_and_before_the_variant():
    experiment = BUILTINS["width"]
    base = base_config(experiment, {"d_model": 48, "n_layers": 1})
    assert (base.d_model, base.n_layers) == (48, 1)
    assert variant_config(base, experiment, experiment.variants[0]).d_model == 32
    with pytest.raises(ExperimentError, match="--set time_budget: every variant gets the same time"):
        base_config(experiment, {"time_budget": 5})


VARIANTS = '[variants.a]\nd_model = 32\n[variants.b]\nd_model = 64\n'


@pytest.mark.parametrize("text, message", [
    ("question = 'x'\nquestoin = 1\n" + VARIANTS, "unknown key 'questoin' (did you mean 'question'?)"),
    (VARIANTS, "question is missing"),
    ("question = 3\n" + VARIANTS, "question = 3: expected a string in quotes"),
    ("question = 'x'\n", "no [variants.NAME] tables"),
    ("question = 'x'\nvariants = 3\n", "variants = 3: expected [variants.NAME] tables"),
    ("question = 'x'\n[variants.a]\nd_model = 32\n", "1 variant(s): an experiment compares 2 to 12"),
    ("question = 'x'\n" + "".join(f"[variants.v{i}]\n" for i in range(MAX_VARIANTS + 1)), "13 variant(s)"),
    ("question = 'x'\n[variants.a]\nd_model = 32\n[variants.b]\nd_modle = 64\n",
     "variants.b: unknown key 'd_modle' (did you mean 'd_model'?)"),
    ("question = 'x'\n[variants.a]\nd_model = 32\n[variants.b]\nd_model = 'wide'\n",
     "variants.b: d_model = 'wide': expected an integer"),
    ("question = 'x'\n[variants.a]\nd_model = 32\n[variants.b]\nn_heads = 3\n",
     "variants.b: n_heads = 3 must divide d_model = 128"),
    ("question = 'x'\n[variants.a]\nlr = 1e9\n[variants.b]\nlr = 0.001\n",
     "variants.a: lr = 1000000000.0: expected a number from 0 to 1"),
    ("question = 'x'\n[variants.a]\ntime_budget = 5\n[variants.b]\n",
     "variants.a.time_budget: every variant gets the same time"),
    ("question = 'x'\n[variants.a]\nx = { y = 1 }\n[variants.b]\n", "variants.a.x is a table"),
    ("question = 'x'\n[variants.'../../etc']\n[variants.b]\n", "a variant's name is letters, digits"),
    ("question = 'x'\nvariants.a = 5\n[variants.b]\n", "variants.a = 5: expected a table of config overrides"),
    ("question = 'x'\nname = '../x'\n" + VARIANTS, "name = '../x': expected letters, digits"),
    ("question = 'x'\ncompare = 'best'\n" + VARIANTS, "compare = 'best': expected one of reference, scale"),
    ("question = 'x'\n[base]\nd_model = -1\n" + VARIANTS, "base: d_model = -1: expected an integer from 8"),
    ("question = 'x\n", "invalid TOML"),
    ("question = 'x'\n" + VARIANTS + "[variants.a]\n", "invalid TOML"),
])
def test_a_bad_experiment_file_gets_one_line_naming_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ExperimentError) as error:
        load_experiment(path)
    assert message in str(error.value)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_files_that_are_not_experiment_files_get_one_line(tmp_path):
    cases = {tmp_path / "none.toml": "no such experiment file", tmp_path: "is a directory"}
    (tmp_path / "binary.toml").write_bytes(b"question = '\xff\xfe'\n")
    cases[tmp_path / "binary.toml"] = "not UTF-8 text at byte"
    (tmp_path / "huge.toml").write_text("# " + "x" * 100_000 + "\n")
    cases[tmp_path / "huge.toml"] = "an experiment file is a few lines"
    for path, message in cases.items():
        with pytest.raises(ExperimentError, match=message):
            load_experiment(path)


# --- conclusions -------------------------------------------------------------------------------

ABLATION = Experiment("why", "Why both?", (
    Variant("full", label="the full model"),
    Variant("no-mlp", {"mlp": False}, "the model without the MLP", "worse", "the MLP turns context into a prediction"),
    Variant("no-attention", {"attention": False}, "the model without attention", "worse",
            "it sees only the current token")))


def test_a_reference_conclusion_states_each_gap_and_why_when_the_numbers_agree():
    text = conclude(ABLATION, {"full": 1.70, "no-mlp": 1.88, "no-attention": 2.31})
    assert text == ("The model without the MLP is 0.18 bits/char worse than the full model: the MLP turns context "
                    "into a prediction. The model without attention is 0.61 bits/char worse than the full model: it "
                    "sees only the current token.")


def test_a_result_against_the_expectation_is_told_without_the_explanation():
    text = conclude(ABLATION, {"full": 1.70, "no-mlp": 1.40, "no-attention": 2.31})
    assert "The model without the MLP is 0.30 bits/char better than the full model." in text
    assert "turns context" not in text


def test_a_result_against_the_expectation_says_what_is_known_to_cause_it():
    then_and_now = BUILTINS["then-and-now"]
    bpc = {variant.name: 2.60 for variant in then_and_now.variants}
    text = conclude(then_and_now, {**bpc, "untied-head": 3.20})
    assert ("An untied head, output layers from zero, alone is 0.60 bits/char worse than the 2019 GPT-2 recipe: "
            "a head that starts at zero learns slowly under AdamW; with Muon it is a small gain.") in text
    assert "no longer share a matrix" not in text
    assert "no longer share a matrix" in conclude(then_and_now, {**bpc, "untied-head": 2.30})


def test_results_within_the_noise_name_no_winner():
    text = conclude(ABLATION, {"full": 1.70, "no-mlp": 1.71, "no-attention": 2.31}, noise=0.03)
    assert text.startswith("The model without the MLP is within the noise of the full model (0.01 bits/char "
                           "apart; the noise is ±0.03).")
    assert "worse than the full model: it sees only" in text
    assert conclude(ABLATION, {"full": 1.70, "no-mlp": 1.70 + NOISE_BPC * 0.9, "no-attention": 1.7}).count(
        "within the noise") == 2


WIDTH = BUILTINS["width"]


def widths(*bpc: float) -> dict[str, float]:
    return dict(zip([v.name for v in WIDTH.variants], bpc, strict=True))


def test_a_scale_where_more_helped_names_the_best_and_says_why():
    text = conclude(WIDTH, widths(2.40, 2.10, 2.00, 1.80))
    assert text == (f"A width of 256 did best (1.80 bits/char). A width of 32 is 0.60 bits/char worse: "
                    f"{WIDTH.more_helps}.")


def test_a_scale_where_more_hurt_says_so():
    text = conclude(WIDTH, widths(1.80, 2.00, 2.10, 2.30))
    assert text == ("A width of 32 did best (1.80 bits/char). A width of 256 is 0.50 bits/char worse: "
                    f"{WIDTH.more_hurts}.")


def test_a_scale_with_a_best_in_the_middle_gives_both_reasons():
    text = conclude(WIDTH, widths(2.30, 1.82, 1.80, 2.00))
    assert text.startswith("A width of 128 did best (1.80 bits/char; a width of 64 within the noise of it). Both ends "
                           "did worse, a width of 32 by 0.50 bits/char and a width of 256 by 0.20: up to a point")
    assert WIDTH.more_helps in text and WIDTH.more_hurts in text


def test_a_scale_all_within_the_noise_names_no_winner():
    text = conclude(WIDTH, widths(1.81, 1.80, 1.82, 1.80))
    assert text == ("All 4 are within the noise of each other (1.80 to 1.82 bits/char): at this time the difference "
                    "between them is not measurable.")
    assert "did best" not in text


def test_a_learners_experiment_without_explanations_still_concludes():
    mine = Experiment("mine", "Which?", (Variant("a"), Variant("b"), Variant("c")), compare="scale")
    assert conclude(mine, {"a": 2.0, "b": 1.6, "c": 1.4}) == ("C did best (1.40 bits/char). A is 0.60 bits/char "
                                                              "worse.")
    assert conclude(replace(mine, compare="reference"), {"a": 2.0, "b": 2.5, "c": 2.0}) == (
        f"B is 0.50 bits/char worse than a. C is within the noise of a (0.00 bits/char apart; the noise is "
        f"±{NOISE_BPC:.2f}).")


def test_a_conclusion_needs_every_result():
    with pytest.raises(ValueError, match="no result for no-attention"):
        conclude(ABLATION, {"full": 1.7, "no-mlp": 1.8})
