"""Opening a training session: the one place minigpt-train and minigpt-tui start from."""

from dataclasses import replace

import pytest

from minigpt.plumbing.session import SessionError, open_session


@pytest.fixture
def data(tmp_path, corpus_text):
    path = tmp_path / "input.txt"
    path.write_text(corpus_text)
    return path


def test_a_new_session_trains_from_scratch(tmp_path, tiny_config, data):
    session = open_session(tiny_config, set(), data, tmp_path / "model.pt")
    assert not session.resumed and session.notes == [] and not session.finished
    assert session.corpus.name == str(data) and session.trainer.step == 0


def test_resuming_keeps_the_shape_and_notes_only_the_explicit_keys_it_ignores(tmp_path, tiny_config, data):
    checkpoint = tmp_path / "model.pt"
    first = open_session(tiny_config, set(), data, checkpoint)
    list(first.trainer.save())

    wider = replace(tiny_config, d_model=64, n_heads=2)
    (note,) = open_session(wider, {"d_model", "n_heads"}, data, checkpoint).notes
    assert note.startswith(f"the model shape and tokenizer come from {checkpoint}; ignoring d_model = 64")
    assert "n_heads" not in note, "n_heads is the same as the checkpoint's"
    resumed = open_session(wider, set(), data, checkpoint)  # a preset's shape, not the user's: no note
    assert resumed.resumed and resumed.notes == [] and resumed.trainer.model_config.d_model == tiny_config.d_model
    assert not open_session(wider, {"d_model"}, data, checkpoint, start="scratch").resumed


def test_a_finished_run_says_how_to_go_on(tmp_path, tiny_config, data):
    checkpoint = tmp_path / "model.pt"
    first = open_session(tiny_config, set(), data, checkpoint)
    assert not first.finished
    list(first.trainer.run())
    assert first.finished, "the same session, once trained (the app keeps it)"
    again = open_session(tiny_config, set(), data, checkpoint)
    assert again.finished
    assert again.notes == [f"{checkpoint} is already at step {tiny_config.max_iters} of max_iters "
                           f"{tiny_config.max_iters}; raise --max-iters to train further"]


def test_resume_without_a_checkpoint_and_a_folder_as_checkpoint_are_refused(tmp_path, tiny_config, data):
    with pytest.raises(SessionError, match="none.pt: no checkpoint to resume from"):
        open_session(tiny_config, set(), data, tmp_path / "none.pt", start="resume")
    (tmp_path / "models").mkdir()
    with pytest.raises(SessionError, match="models: is a directory; pass --out with a file name"):
        open_session(tiny_config, set(), data, tmp_path / "models", start="scratch")
