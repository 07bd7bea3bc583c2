import math
from dataclasses import replace

import pytest
import torch

from minigpt.evaluate import score_split
from minigpt.optim import learning_rate
from minigpt.plumbing.checkpoint import load_checkpoint
from minigpt.plumbing.corpus import Corpus
from minigpt.trainer import EvalEvent, FinalScoreEvent, SavedEvent, StepEvent, Trainer, TrainingDiverged


def losses(events):
    return [e.loss for e in events if isinstance(e, StepEvent)]


def test_events_come_in_order_with_evaluations_and_saves(tmp_path, tiny_config, corpus):
    trainer = Trainer(tiny_config, corpus, checkpoint_path=tmp_path / "m.pt")
    events = list(trainer.run())
    steps = [e.step for e in events if isinstance(e, StepEvent)]
    assert steps == list(range(1, 21))
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert [e.step for e in evals] == [0, 10, 20], "the untrained model first, then every eval_interval steps"
    assert all(e.val_loss > 0 and e.sample for e in evals)
    assert evals[0].val_bpc == pytest.approx(evals[0].val_loss / 0.6931471805599453)
    assert [e.step for e in events if isinstance(e, SavedEvent)] == [10, 20], "nothing to save before training"
    assert losses(events)[-1] < losses(events)[0]


def test_every_evaluation_reads_the_same_windows(tiny_config, corpus):
    frozen = replace(tiny_config, lr=0.0, min_lr=0.0, max_iters=30)  # weights that never change...
    evals = [e for e in Trainer(frozen, corpus).run() if isinstance(e, EvalEvent)]
    assert len(evals) == 4  # the untrained model at step 0, then steps 10, 20 and 30
    assert len({(e.train_loss, e.val_loss) for e in evals}) == 1  # ...score the same at every evaluation


def test_a_run_that_reaches_its_end_scores_the_whole_validation_split(tiny_config, corpus):
    trainer = Trainer(tiny_config, corpus)
    events = list(trainer.run())
    final = events[-1]
    assert isinstance(final, FinalScoreEvent) and final.step == 20
    assert [e for e in events if isinstance(e, FinalScoreEvent)] == [final]
    trainer.model.eval()
    expected = score_split(trainer.model, trainer.splits.val, 32, tiny_config.batch_size, 1.0, trainer.device,
                           trainer.dtype)
    assert (final.val_loss, final.val_bpc, final.tokens) == (expected.loss, expected.bpc, len(trainer.splits.val) - 1)
    assert trainer.final_score == expected


def test_a_stopped_run_is_not_scored(tiny_config, corpus):
    trainer = Trainer(tiny_config, corpus)
    for event in trainer.run():
        if isinstance(event, StepEvent) and event.step == 5:
            trainer.request_stop()
        assert not isinstance(event, FinalScoreEvent)
    assert trainer.final_score is None


@pytest.mark.parametrize(("optimizer", "schedule"), [("adamw", "cosine"), ("muon", "wsd")])
def test_resume_continues_exactly_like_an_unbroken_run(tmp_path, tiny_config, corpus, optimizer, schedule):
    config = replace(tiny_config, dropout=0.1,  # dropout draws from the RNG too
                     optimizer=optimizer, schedule=schedule, muon_momentum_warmup=15)  # Muon's warmup spans the break
    unbroken = Trainer(config, corpus)
    unbroken_losses = losses(unbroken.run())

    first = Trainer(replace(config, max_iters=10), corpus, checkpoint_path=tmp_path / "half.pt")
    first_losses = losses(first.run())
    second = Trainer(config, corpus, resume=load_checkpoint(tmp_path / "half.pt"))
    assert second.step == 10
    second_losses = losses(second.run())

    assert first_losses + second_losses == unbroken_losses
    for name, tensor in unbroken.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[name], tensor), name


def test_the_untrained_model_is_evaluated_once_before_the_first_step_and_not_again_on_resume(tmp_path, tiny_config,
                                                                                              corpus):
    trainer = Trainer(replace(tiny_config, max_iters=10), corpus, checkpoint_path=tmp_path / "m.pt")
    events = list(trainer.run())
    first = events[0]
    assert isinstance(first, EvalEvent) and first.step == 0 and first.sample, "the learner sees the start: noise"
    # A model that guesses every token alike scores ln(vocabulary size); a fresh one is close to that.
    uniform = math.log(trainer.tokenizer.vocab_size)
    assert first.val_loss == pytest.approx(uniform, rel=0.1) and first.best_val_loss == first.val_loss
    resumed = Trainer(replace(tiny_config, max_iters=20), corpus, resume=load_checkpoint(tmp_path / "m.pt"))
    again = list(resumed.run())
    assert isinstance(again[0], StepEvent) and again[0].step == 11, "a resumed run does not evaluate its start again"
    assert [e.step for e in again if isinstance(e, EvalEvent)] == [20]


def test_same_seed_same_run_other_seed_other_run(tiny_config, corpus):
    a = losses(Trainer(tiny_config, corpus).run())
    b = losses(Trainer(tiny_config, corpus).run())
    c = losses(Trainer(replace(tiny_config, seed=7), corpus).run())
    assert a == b and a != c


def test_stop_request_ends_the_run_and_saves(tmp_path, tiny_config, corpus):
    trainer = Trainer(replace(tiny_config, max_iters=100, eval_interval=50), corpus,
                      checkpoint_path=tmp_path / "m.pt")
    events = []
    for event in trainer.run():
        events.append(event)
        if isinstance(event, StepEvent) and event.step == 7:
            trainer.request_stop()
    assert trainer.step == 7
    assert isinstance(events[-1], SavedEvent)
    assert load_checkpoint(tmp_path / "m.pt").step == 7


def test_divergence_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, tiny_config, corpus):
    path = tmp_path / "m.pt"
    trainer = Trainer(tiny_config, corpus, checkpoint_path=path)
    list(trainer.run())
    good = path.read_bytes()
    with torch.no_grad():
        trainer.model.token_embedding.weight.fill_(float("nan"))
    trainer.config = replace(trainer.config, max_iters=40)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 21"):
        list(trainer.run())
    assert path.read_bytes() == good


def test_learning_rate_warms_up_then_decays_to_the_floor(tiny_config):
    config = replace(tiny_config, lr=1.0, min_lr=0.1, warmup_iters=10, max_iters=110)
    rates = [learning_rate(step, config) for step in range(111)]
    assert rates[0] < rates[5] < rates[9] < 1.0
    assert rates[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[110] == pytest.approx(0.1)


def test_resuming_onto_a_corpus_with_new_characters_is_a_clear_error(tmp_path, tiny_config, corpus, corpus_text):
    from minigpt.tokenizer import UnknownCharactersError

    trainer = Trainer(tiny_config, corpus, checkpoint_path=tmp_path / "m.pt")
    list(trainer.run())
    with pytest.raises(UnknownCharactersError, match="'§'"):
        Trainer(tiny_config, Corpus.from_text(corpus_text + "§"), resume=load_checkpoint(tmp_path / "m.pt"))


def test_snapshot_is_a_separate_eval_mode_copy(tiny_config, corpus):
    trainer = Trainer(tiny_config, corpus)
    snapshot = trainer.snapshot()
    assert not snapshot.training and trainer.model.training
    assert torch.equal(snapshot.head.weight, trainer.model.head.weight)
    assert snapshot.head.weight is snapshot.token_embedding.weight  # tied, as in the trained model
    x = torch.randint(0, trainer.model_config.vocab_size, (1, 8))
    assert torch.equal(snapshot(x)[0], trainer.model.eval()(x)[0])
    trainer.model.train()
    list(trainer.run())
    assert not torch.equal(snapshot.head.weight, trainer.model.head.weight)
