"""Pilot tests: every key and flow of minigpt-tui with a tiny model."""

from __future__ import annotations

import subprocess
import sys

from textual import events
from textual.command import CommandList, CommandPalette
from tui_helpers import TINY, Messages, complete, completions_ended, make_app, wait_for, wait_loaded, write_settings

from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.device import pick_device
from minigpt.plumbing.runlog import LOG_EVERY
from minigpt.plumbing.session import open_session
from tui.messages import (
    CheckpointSaved,
    CompletionEnded,
    CompletionText,
    FinalScored,
    TrainingPaused,
    TrainingProgress,
)
from tui.options import parse_options
from tui.screens.help import HelpScreen
from tui.widgets.completion_list import PROMPT_SHOWN, Completion
from tui.widgets.loss_chart import LossChart
from tui.widgets.prompt import PromptInput


def test_startup_path_does_not_import_torch():
    code = "import sys, tui.app; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


async def test_loads_a_new_model_and_shows_what_it_works_on(workdir):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.run_state == "loading"
        await wait_loaded(pilot)
        assert app.run_state == "idle"
        assert app.run_info.device == pick_device("auto").type  # cuda where there is a GPU
        assert app.run_info.parameters == app.session.trainer.num_parameters
        assert (app.run_info.checkpoint, app.run_info.saved) == ("checkpoints/model.pt", "new")
        assert app.run_info.corpus == "data/input.txt"
        assert app.progress.step == 0


async def test_train_pause_resume_stop(workdir):
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: app.run_state == "training", "training")
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: len(chart.train) >= 2 and app.progress.val_loss is not None, "points")
        assert app.progress.step > 0 and app.progress.tokens_per_sec > 0
        assert any(c.has_class("-sample") for c in app.query(Completion)), "a sample at the evaluation"
        assert app.query(Completion).first().title.startswith("sample at step 0"), "the untrained model's, first"

        await pilot.press("t")
        await wait_for(pilot, lambda: app.run_state == "paused" and messages.of(TrainingPaused), "the pause")
        step = app.session.trainer.step
        await pilot.press("s")  # saved by the paused training thread, between two steps
        await wait_for(pilot, lambda: messages.of(CheckpointSaved) and messages.of(CheckpointSaved)[-1].event.step
                       == step, "the save")
        assert load_checkpoint(workdir / "checkpoints/model.pt").step == step
        await pilot.pause(0.3)
        assert app.session.trainer.step == step

        await pilot.press("t")
        await wait_for(pilot, lambda: app.run_state == "training", "the resume")
        await wait_for(pilot, lambda: app.session.trainer.step > step + 5, "training to go on")

        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")
        final = app.session.trainer.step
        assert load_checkpoint(workdir / "checkpoints/model.pt").step == final
        assert app.progress.step == final
        assert app.run_info.saved == f"saved, step {final:,}"


async def test_the_live_chart_is_the_chart_of_the_relaunched_app(workdir, monkeypatch):
    """Curves of a few buckets, so that they are thinned several times: what the app drew live
    is what it draws again when it reopens the run from its log."""
    monkeypatch.setattr("tui.widgets.loss_chart.CAPACITY", 2)
    app = make_app("--eval-interval", "30")
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: app.session.trainer.step >= 6 * LOG_EVERY, "steps")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")
        live_train, live_val = app.chart.train.points, app.chart.val.points
        assert app.chart.train.width >= 4 * LOG_EVERY, "thinned twice at least"
    assert len(live_train) <= 3 and live_train[0][0] == LOG_EVERY, "the first logged step, then 2 buckets at most"
    relaunched = make_app()
    async with relaunched.run_test() as pilot:
        await wait_loaded(pilot)
        assert relaunched.chart.train.points == live_train
        assert relaunched.chart.val.points == live_val


async def test_a_run_that_reaches_its_end_shows_its_final_score(workdir):
    messages = Messages()
    app = make_app("--max-iters", "30")
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: messages.of(FinalScored) and app.run_state == "finished", "the end of the run")
        score = app.session.trainer.final_score
        assert app.progress.final_val_loss == score.loss
        await pilot.pause()
        assert f"final val {score.loss:.4f}" in str(app.query_one("#figures").render())
        assert f"step 30: final val loss {score.loss:.4f} ({score.bpc:.3f} bits/char) on all {score.tokens:,} val " \
               "tokens" in app.event_log.entries
    relaunched = make_app("--max-iters", "30")
    async with relaunched.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: relaunched.run_state == "finished", "the finished run")
        assert relaunched.progress.final_val_loss == score.loss, "read back from the run's log"


async def test_training_resumes_from_the_checkpoint_at_start(workdir):
    async with make_app().run_test() as pilot:
        await wait_loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: pilot.app.session.trainer.step >= 25, "steps")
        await pilot.press("x")
        await wait_for(pilot, lambda: pilot.app.run_state == "idle", "the stop")
        step = pilot.app.session.trainer.step
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        assert app.session.resumed and app.session.trainer.step == step
        assert app.run_info.saved == f"loaded, step {step}"


async def test_completion_streams_in_several_updates(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 400\nseed = 3\n")
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await complete(pilot, "the cat")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        completion = app.completions.list.last_completion
        texts = messages.of(CompletionText)
        assert len(texts) >= 3, "several updates before the end"
        assert completion.prompt == "the cat"
        assert completion.text == "".join(m.text for m in texts)
        assert len(completion.text) == 400  # one character per token
        assert "400 tokens" in str(completion.query_one(".title").render())
        assert app.query_one("#prompt", PromptInput).text == ""


async def test_escape_cancels_and_late_text_is_dropped(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 100000\n")
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await complete(pilot, "the")
        await wait_for(pilot, lambda: messages.of(CompletionText), "the first text")
        await pilot.press("escape")
        await wait_for(pilot, lambda: completions_ended(app) == 1 and not app.generating, "the cancel")
        cancelled = app.completions.list.last_completion
        assert "cancelled" in str(cancelled.query_one(".title").render())
        length = len(cancelled.text)
        await wait_for(pilot, lambda: not app.workers._workers or all(
            w.is_finished for w in app.workers if w.group == "generate"), "the thread to end")
        await pilot.pause(0.1)
        assert len(cancelled.text) == length
        assert not messages.of(CompletionEnded), "a cancelled completion never ends normally"
        await pilot.press("escape")  # nothing to cancel: leaves the prompt
        await wait_for(pilot, lambda: app.focused is app.completions.list, "the prompt to lose the focus")


async def test_completion_while_training_uses_a_snapshot_and_training_goes_on(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 300\n")
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: messages.of(TrainingProgress), "training")
        await complete(pilot, "fox")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        assert app.run_state == "training"
        step = app.session.trainer.step
        await wait_for(pilot, lambda: app.session.trainer.step > step, "more steps")
        assert len(app.query(".-prompt").last(Completion).text) == 300


async def test_prompt_with_unknown_characters_is_refused(workdir):
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await complete(pilot, "Zürich")
        await wait_for(pilot, lambda: messages.notices("error"), "the refusal")
        assert any("not in the model's vocabulary" in n for n in messages.notices("error"))
        assert not app.generating and not app.query(".-prompt")


async def test_a_one_megabyte_paste_is_completed_and_shown_from_its_end(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 20\nseed = 3\n")
    paste = "the cat " * (2**20 // 8)
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await pilot.press("slash")
        app.query_one("#prompt", PromptInput).post_message(events.Paste(paste))
        await pilot.press("enter")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        completion = app.completions.list.last_completion
        assert completion.prompt == paste  # kept whole, for copying
        assert len(completion.text) == 20
        shown = str(completion.query_one(".paragraph").render())
        assert shown.startswith("…" + paste[-PROMPT_SHOWN:]) and len(shown) == 1 + PROMPT_SHOWN + 20


async def test_log_scale_copy_views_and_help(workdir):
    write_settings(workdir, "[sampling]\nmax_new_tokens = 20\n")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        await pilot.press("l")
        await wait_for(pilot, lambda: app.query_one(LossChart).log_scale, "the log scale")
        await pilot.press("l")
        await wait_for(pilot, lambda: not app.query_one(LossChart).log_scale, "the linear scale")

        await complete(pilot, "dog")
        await wait_for(pilot, lambda: completions_ended(app) == 1, "the completion")
        await pilot.press("escape", "y")
        completion = app.completions.list.last_completion
        await wait_for(pilot, lambda: app.clipboard == "dog" + completion.text, "the copy")

        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_view == "log-view", "the log view")
        await pilot.press("1")
        await wait_for(pilot, lambda: app.current_view == "train-view", "the train view")

        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        listed = {binding_id for _, rows in app.screen.groups for _, _, binding_id in rows}
        assert listed == {binding.id for _, binding in app.all_bindings()}, "every key, once"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "the help to close")


async def test_command_palette_lists_the_actions_that_apply(workdir):
    app = make_app()
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Start training", "Save a checkpoint now", "Edit the sampling settings", "Show help and every key",
                "Toggle a log scale for the loss", "Show the event log", "Write a prompt", "Theme", "Quit"} <= titles
        assert "Pause training" not in titles
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"start training")
        await wait_for(pilot, lambda: app.screen.query_one(CommandList).highlighted is not None
                       and "Start training" in str(app.screen.query_one(CommandList).highlighted_option.prompt),
                       "the palette to find the command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "training", "training to start from the palette")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Pause training", "Stop training and save a checkpoint"} <= titles


async def test_keymap_in_the_settings_file_remaps_keys(workdir):
    write_settings(workdir, '[keymap]\ntrain = "f5"\nnonsense = "f6"\n')
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        assert any("unknown binding id 'nonsense'" in n for n in messages.notices())
        await pilot.press("t", "f5")  # t does nothing now; f5 trains
        await wait_for(pilot, lambda: app.run_state == "training", "f5 to start training")


async def test_quit_while_training_saves_a_loadable_checkpoint(workdir):
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: app.session.trainer.step > 30, "steps")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None, "the app to exit")
    checkpoint = load_checkpoint(workdir / "checkpoints/model.pt")
    assert checkpoint.step == app.session.trainer.step > 30
    checkpoint.build_model()


async def test_failed_save_is_an_error_and_the_old_checkpoint_survives(workdir, monkeypatch):
    async with make_app().run_test() as pilot:  # a first run leaves a checkpoint
        await wait_loaded(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: (workdir / "checkpoints/model.pt").exists() and pilot.app.run_state == "idle",
                       "the save")
    path = workdir / "checkpoints/model.pt"
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("minigpt.plumbing.training_state.save_checkpoint", disk_full)
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: app.session.trainer.step > 5, "steps")
        await pilot.press("s")
        await wait_for(pilot, lambda: messages.notices("error"), "the error")
        assert "No space left on device" in messages.notices("error")[0]
        await pilot.press("ctrl+q")  # the save on quit fails too: the app stays and says so
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")
        assert app.return_code is None
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None, "the exit")
    assert path.read_bytes() == before


async def test_an_error_in_the_training_thread_is_a_notification(workdir, monkeypatch):
    def broken_step(self):
        raise RuntimeError("simulated failure")

    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        with monkeypatch.context() as fault:
            fault.setattr("minigpt.trainer.Trainer._forward_backward", broken_step)
            await pilot.press("t")
            await wait_for(pilot, lambda: messages.notices("error") and app.run_state == "idle", "the failure")
        assert messages.notices("error") == ["RuntimeError: simulated failure"]
        assert app.is_running
        # The fault is gone: the same session trains again.
        await pilot.press("t")
        await wait_for(pilot, lambda: messages.of(TrainingProgress), "training after the failure")
        assert app.run_state == "training"
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "idle", "the stop")


async def test_an_error_in_the_completion_thread_is_a_notification(workdir, monkeypatch):
    def broken_generate(*args, **kwargs):
        raise RuntimeError("simulated sampling failure")

    write_settings(workdir, "[sampling]\nmax_new_tokens = 30\n")
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        with monkeypatch.context() as fault:
            fault.setattr("tui.generation.generate", broken_generate)
            await complete(pilot, "the")
            await wait_for(pilot, lambda: completions_ended(app) == 1 and messages.notices("error"), "the failure")
        assert messages.notices("error") == ["RuntimeError: simulated sampling failure"]
        assert "failed" in str(app.completions.list.last_completion.query_one(".title").render())
        await complete(pilot, "the")
        await wait_for(pilot, lambda: messages.of(CompletionEnded), "the next completion")
        assert len(app.completions.list.last_completion.text) == 30


async def test_a_bad_checkpoint_is_reported_and_the_app_stays(workdir):
    (workdir / "checkpoints").mkdir()
    (workdir / "checkpoints/model.pt").write_bytes(b"not a checkpoint")
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        assert app.run_state == "error"
        assert any("not a MiniGPT checkpoint" in n for n in messages.notices("error"))
        await pilot.press("t")  # nothing to train: the key does nothing
        assert app.run_state == "error" and app.is_running


def test_saves_go_where_the_app_started_whatever_the_directory_later(workdir, monkeypatch, tmp_path_factory):
    options = parse_options(TINY)
    session = open_session(options.config, options.explicit_keys, options.data, options.checkpoint)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    events = list(session.trainer.save())
    assert load_checkpoint(workdir / "checkpoints/model.pt").step == 0, events


async def test_a_run_that_shows_the_speed_cache_wrong_corrects_it_and_says_so(workdir, monkeypatch):
    import torch

    from minigpt.plumbing.shape import LADDER, SpeedCache, timed_vocab
    from tui.messages import SpeedCacheCorrected

    monkeypatch.setenv("XDG_CACHE_HOME", str(workdir / "cache"))
    monkeypatch.setattr("minigpt.plumbing.speedcheck.SKIPPED_STEPS", 2)  # a few steps do here: the
    monkeypatch.setattr("minigpt.plumbing.speedcheck.MIN_STEPS", 5)  # figure is far off, and the machine busy
    assert parse_options(["--retime"]).retime and not parse_options([]).retime
    rung = LADDER[0]
    messages = Messages()
    app = make_app("--d-model", str(rung.d_model), "--n-layers", str(rung.n_layers), "--n-heads", str(rung.n_heads),
                   "--block-size", str(rung.block_size), "--batch-size", str(rung.batch_size), "--dtype", "float32",
                   "--eval-interval", "100000")
    async with app.run_test(message_hook=messages.append) as pilot:
        await wait_loaded(pilot)
        trainer = app.session.trainer
        cache = SpeedCache(trainer.device, timed_vocab(trainer.tokenizer.vocab_size), trainer.config)
        cache.record(rung, torch.float32, 1.0)  # timed, it says, at a moment the machine all but stood still
        cache.save()
        await pilot.press("t")
        await wait_for(pilot, lambda: trainer.step >= 10, "enough steps to tell the run's speed")
        await pilot.press("x")
        await wait_for(pilot, lambda: messages.of(SpeedCacheCorrected), "the correction")
        assert any(notice.startswith("the speed cache had 1 tokens/s for d_model 64 x 2 layers")
                   for notice in messages.notices())
    cache = SpeedCache(trainer.device, timed_vocab(trainer.tokenizer.vocab_size), trainer.config)
    assert cache.get(rung, torch.float32) > 1
