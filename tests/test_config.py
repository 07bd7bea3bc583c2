import pytest

from minigpt.plumbing import config as cfg


def test_layers_override_in_order(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("lr = 0.01\nbatch_size = 7\n")
    config = cfg.resolve("tiny", toml, ["batch_size=9"], {"max_iters": 3})
    assert (config.lr, config.batch_size, config.max_iters) == (0.01, 9, 3)
    assert config.d_model == cfg.PRESETS["tiny"]["d_model"]


@pytest.mark.parametrize("overrides, words", [
    ({"learning_rate": 1e-3}, ["learning_rate", "unknown"]),
    ({"batch_size": "big"}, ["batch_size", "'big'", "integer"]),
    ({"batch_size": 2.5}, ["batch_size", "integer"]),
    ({"batch_size": 0}, ["batch_size", "0", "from 1"]),
    ({"dropout": 1.5}, ["dropout", "1.5", "from 0 to 0.9"]),
    ({"lr": float("nan")}, ["lr", "nan", "from 0 to 1"]),
    ({"compile": "yes"}, ["compile", "true or false"]),
    ({"device": "tpu"}, ["device", "'tpu'", "cpu"]),
    ({"n_heads": 3}, ["n_heads", "d_model"]),
    ({"min_lr": 1.0, "lr": 0.5}, ["min_lr", "lr"]),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(overrides, words):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.apply_overrides(cfg.preset("tiny"), overrides, source="run.toml")
    message = str(info.value)
    assert message.startswith("run.toml")
    for word in words:
        assert word in message


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(cfg.ConfigError, match="did you mean 'max_iters'"):
        cfg.apply_overrides(cfg.preset("tiny"), {"max_iter": 5})


def test_toml_problems_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 3\n")
    with pytest.raises(cfg.ConfigError, match="bad.toml: not valid TOML"):
        cfg.resolve("tiny", bad)
    with pytest.raises(cfg.ConfigError, match="no such config file"):
        cfg.resolve("tiny", tmp_path / "missing.toml")
    with pytest.raises(cfg.ConfigError, match="is a directory"):
        cfg.resolve("tiny", tmp_path)
    typed = tmp_path / "typed.toml"
    typed.write_text('max_iters = "many"\n')
    with pytest.raises(cfg.ConfigError, match="typed.toml: max_iters = 'many'"):
        cfg.resolve("tiny", typed)


def test_set_parses_toml_values_and_bare_strings():
    assert cfg.parse_assignment("lr=3e-4") == ("lr", 3e-4)
    assert cfg.parse_assignment("compile=true") == ("compile", True)
    assert cfg.parse_assignment("device=cpu") == ("device", "cpu")
    with pytest.raises(cfg.ConfigError, match="key=value"):
        cfg.parse_assignment("lr")


def test_every_preset_is_valid_and_unknown_preset_is_named():
    for name in cfg.PRESETS:
        cfg.preset(name)
    with pytest.raises(cfg.ConfigError, match="'huge'"):
        cfg.preset("huge")


def test_resolution_reports_the_keys_the_user_set(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("d_model = 64\n")
    config, explicit = cfg.resolve_with_explicit_keys("quick", toml, ["lr=1e-3"], {"n_layers": 2})
    assert explicit == {"d_model", "lr", "n_layers"}, "the preset's own keys are not the user's"
    assert (config.d_model, config.lr, config.n_layers, config.time_budget) == (64, 1e-3, 2, 150)


def test_the_budget_presets_train_todays_model_and_the_others_gpt2s():
    """quick and default (plain minigpt-tui and minigpt-train) carry the changes since GPT-2 that the
    measurements chose; tiny, classic and every key's own default keep the 2019 model."""
    modern = {"rope", "norm", "activation", "qk_norm", "tie_head", "zero_init", "optimizer", "schedule"}
    assert set(cfg.MODERN) == modern
    for name in ("quick", "default"):
        config = cfg.resolve(name)
        assert {key: getattr(config, key) for key in modern} == cfg.MODERN, name
    gpt2 = dict(rope=False, norm="layernorm", activation="gelu", qk_norm=False, tie_head=True, zero_init=False,
                optimizer="adamw", schedule="cosine")
    for config in (cfg.TrainConfig(), cfg.resolve("tiny"), cfg.resolve("classic")):
        assert {key: getattr(config, key) for key in modern} == gpt2
