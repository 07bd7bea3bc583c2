"""The training loop, exposed as a stream of plain events.

    trainer = Trainer(config, corpus)
    for event in trainer.run():
        ...  # StepEvent after every step, EvalEvent after every evaluation,
             # FinalScoreEvent once the run has reached its end

Trainer.run() is the loop: read it first. Before the first step it
evaluates the untrained model once (its loss is about ln(vocab_size): it
guesses uniformly). Then, step after step: set the learning rate from the
schedule, run forward and backward on a batch, clip the gradient, update the
weights; evaluate and save now and then. At its end the last weights are
scored on the whole validation split (minigpt.evaluate): the run's figure.
The optimizer and its schedule are minigpt.optim's. Three collaborators from
minigpt.plumbing keep the rest out of the loop, each met in one line:

    BudgetClock          (clock) the time the run has used, and a time budget's schedule and deadline
    agree_on_next_step   (distributed) under torchrun, every process takes the same decision before a step
    save_state           (training_state) the whole state in a checkpoint, so a resumed run goes on exactly

The library never prints: a CLI draws a progress bar from the events, a
Textual worker posts them to the screen. Between two events the loop is
suspended, so a consumer pauses training simply by not asking for the next
one, and stops it with request_stop() (checked before every step).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from minigpt.data import BatchSampler, make_tokenizer, split_corpus
from minigpt.evaluate import FixedWindows, Score, memorising, score_batches, score_split
from minigpt.model import GPT, ModelConfig
from minigpt.optim import learning_rate, make_optimizer, set_step_hyperparameters
from minigpt.plumbing.checkpoint import Checkpoint
from minigpt.plumbing.clock import BudgetClock
from minigpt.plumbing.compiler import compile_model
from minigpt.plumbing.config import TrainConfig
from minigpt.plumbing.corpus import Corpus
from minigpt.plumbing.device import autocast, check_fits_in_memory, pick_device, pick_dtype
from minigpt.plumbing.distributed import SINGLE, DistributedError, World, agree_on_next_step, gradient_exchange
from minigpt.plumbing.errors import MiniGPTError
from minigpt.plumbing.training_state import restore_state, save_state
from minigpt.sampling import sample_text
from minigpt.tokenizer import Tokenizer, UnknownCharactersError

SAMPLE_TOKENS = 200
FINISHED_MARGIN = 2.0  # seconds: a time budget this close to used up leaves no room for another step


class TrainingDiverged(MiniGPTError, RuntimeError):
    """The loss became NaN or infinite; nothing was saved after it did."""


@dataclass(frozen=True)
class StepEvent:
    step: int  # optimizer steps completed
    max_iters: int
    loss: float
    lr: float
    tokens_per_sec: float
    elapsed: float  # seconds the run has used, start-up, evaluations and earlier sessions included, pauses not
    eta: float  # seconds left: at the recent pace, or of the time budget
    progress: float  # share of the run done, 0 to 1: of max_iters, or of the time budget


@dataclass(frozen=True)
class EvalEvent:
    step: int
    train_loss: float
    val_loss: float
    train_bpc: float  # bits per character: comparable across tokenizers
    val_bpc: float
    best_val_loss: float
    sample: str  # a short text from the current weights
    elapsed: float  # as StepEvent.elapsed, when the evaluation began
    memorising: bool = False  # the gap between val and train loss has grown: see evaluate.memorising


@dataclass(frozen=True)
class FinalScoreEvent:
    """A run that reached its end (max_iters, or its time budget), its last
    weights scored on the whole validation split (minigpt.evaluate.score_split)."""
    step: int
    val_loss: float  # nats per token
    val_bpc: float
    tokens: int  # validation tokens scored
    elapsed: float  # as StepEvent.elapsed, once scored


@dataclass(frozen=True)
class SavedEvent:
    step: int
    path: Path


@dataclass(frozen=True)
class SaveFailedEvent:
    step: int
    path: Path
    error: str


Event = StepEvent | EvalEvent | FinalScoreEvent | SavedEvent | SaveFailedEvent


def model_config(config: TrainConfig, vocab_size: int) -> ModelConfig:
    """The model's shape and switches, as the training config gives them: every
    ModelConfig key but the vocabulary's size is a TrainConfig key of the same name."""
    keys = [f.name for f in fields(ModelConfig) if f.name != "vocab_size"]
    return ModelConfig(vocab_size=vocab_size, **{key: getattr(config, key) for key in keys})


class Trainer:
    def __init__(self, config: TrainConfig, corpus: Corpus, checkpoint_path: str | Path | None = None,
                 resume: Checkpoint | None = None, tokenizer: Tokenizer | None = None,
                 world: World = SINGLE) -> None:
        """tokenizer: one already made for this corpus (open_session makes it, with progress);
        by default a new run makes its own, and a resumed one keeps its checkpoint's.
        world: this process's place in a torchrun run (by default the only process)."""
        self.config = config
        self.world = world
        self.slots = world.slots(config.grad_accum)  # the micro-batches of a step this process runs
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None  # as given, for messages
        # Saves go where the run started, whatever the current directory is by then.
        self._save_to = self.checkpoint_path.absolute() if self.checkpoint_path else None
        self.device = world.device(pick_device(config.device))
        self.dtype = pick_dtype(config.dtype, self.device)
        torch.manual_seed(config.seed)

        self.tokenizer = resume.tokenizer if resume else tokenizer or make_tokenizer(
            config.tokenizer, corpus, config.val_fraction, config.vocab_size)
        self.model_config = resume.model_config if resume else model_config(config, self.tokenizer.vocab_size)
        # Documented choice: a resumed model keeps its vocabulary and shape.
        if resume and (unknown := self.tokenizer.unknown_characters(corpus.characters)):
            raise UnknownCharactersError(unknown, f"{corpus.name} uses them, and a resumed model keeps its "
                                         "vocabulary; start a new model with --from-scratch or pass another --out")
        check_fits_in_memory(self.model_config, config.batch_size, self.device)
        self.splits = split_corpus(corpus, self.tokenizer, config.val_fraction, self.model_config.block_size)
        # Every evaluation reads the same windows of each split, so its losses move only with learning.
        self.eval_windows = {name: FixedWindows(data, config.batch_size, self.model_config.block_size,
                                                config.eval_iters, config.seed)
                             for name, data in (("train", self.splits.train), ("val", self.splits.val))}
        # What ends a run: an evaluation of the fixed windows, then the score of the whole validation split.
        self.final_batches = 2 * config.eval_iters + score_batches(len(self.splits.val),
                                                                   self.model_config.block_size, config.batch_size)
        self.final_score: Score | None = None  # once the run has reached its end

        world.require_same({"the corpus's length in characters": corpus.length, "the vocabulary's size":
                            self.tokenizer.vocab_size, "the step to resume from": resume.step if resume else 0})
        self.notes: list[str] = []  # what the user should know about the set-up or a resume
        self.model = GPT(self.model_config).to(self.device)  # saved and sampled: never wrapped
        self.eval_model = self.model  # what evaluations call: compiled, with compile = true
        if config.compile:
            self.eval_model, why_not = compile_model(self.model, self.device)
            self.notes += [why_not] if why_not else []
        self.forward_model = world.data_parallel(self.eval_model, self.device)  # what training steps call
        if world.rank:
            torch.manual_seed(config.seed + world.rank)  # the same weights everywhere, but each rank its own dropout
        self.optimizer = make_optimizer(self.model, config, self.device, self.dtype)
        self.streams = [BatchSampler(self.splits.train, config.batch_size, self.model_config.block_size,
                                     config.seed + slot) for slot in self.slots]  # a stream for each slot
        self.step = 0
        self.best_val_loss = float("inf")
        self.smallest_gap = float("inf")  # the smallest val - train loss of this session's evaluations
        self.clock: BudgetClock | None = None  # while run() goes on
        self.time_spent = 0.0
        self._last_saved_step: int | None = None
        self._last_evaluated_step: int | None = None
        self._last_scored_step: int | None = None
        self._eval_batch_seconds = 0.0  # what a batch of an evaluation takes, once measured
        self._stop = threading.Event()
        self._update_lock = threading.Lock()  # held while the weights change
        if resume:
            self.notes += restore_state(self, resume)

    # --- the loop ---------------------------------------------------------------------------

    def run(self, started: float | None = None) -> Iterator[Event]:
        """Train until max_iters, the end of the time budget or a stop request.
        Evaluate and save every eval_interval steps (with a time budget: at
        intervals of the budget) and once more at the end. started is the
        time.monotonic() at which the program started: a time budget counts
        the start-up too."""
        self._stop.clear()
        self.clock = BudgetClock(self.config.time_budget, self.time_spent, started)
        self.model.train()
        try:
            if self.step == 0:
                yield from self._evaluate()  # the untrained model: the loss of a uniform guess, and noise
            while True:
                self.clock.count(after_wait=True)  # the consumer's time counts, a pause does not
                plan = agree_on_next_step(self.world, self.clock, self._stop, self.final_batches,
                                          done=self.step >= self.config.max_iters)  # the same on every rank
                if plan.evaluate:
                    yield from self._evaluate_and_save()
                    continue  # it took time: decide again
                if not plan.train:
                    break
                lr = learning_rate(self.step, self.config, plan.progress)
                set_step_hyperparameters(self.optimizer, self.config, self.step, lr)  # and Muon's momentum
                loss = self._forward_backward()  # a batch for each micro-step: its loss, and the gradients
                if not math.isfinite(loss):  # the same mean on every rank: all stop, before the update
                    raise self._diverged(f"loss became {loss}", self.step + 1)
                if self.config.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
                with self._update_lock:  # snapshot() copies the weights between two updates
                    self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                self.clock.step_done()  # its moving average of a step's time keeps tokens/s and the ETA steady
                yield self._step_event(loss, lr)
                if self._evaluation_due():
                    yield from self._evaluate_and_save()
            yield from self._finish()
        except DistributedError as e:  # nothing is saved without every rank: the last save stays as it was
            raise DistributedError(f"{e}; {self._kept()}") from None
        finally:
            self.time_spent, self.clock = self.clock.used, None  # a save between runs must not count the idle time

    def _forward_backward(self) -> float:
        """Forward and backward over this process's micro-batches, each loss
        scaled so that the gradient is their mean; returns the mean loss over
        every process."""
        total = torch.zeros((), device=self.device)
        for i, stream in enumerate(self.streams):
            with gradient_exchange(self.forward_model, last=i == len(self.streams) - 1):
                x, y = stream.next_batch()
                with autocast(self.device, self.dtype):
                    _, loss = self.forward_model(x.to(self.device), y.to(self.device))
                (loss / len(self.streams)).backward()
            total += loss.detach().float()
        return self.world.mean(total / len(self.streams)).item()

    def _step_event(self, loss: float, lr: float) -> StepEvent:
        clock = self.clock
        if self.config.time_budget:
            eta, progress = max(clock.left, 0.0), min(clock.used / clock.budget, 1.0)
        else:
            eta = (self.config.max_iters - self.step) * clock.step_seconds
            progress = self.step / self.config.max_iters
        return StepEvent(self.step, self.config.max_iters, loss, lr, self.tokens_per_step / clock.step_seconds,
                         self.time_spent, eta, progress)

    def _evaluation_due(self) -> bool:
        if self.config.time_budget:
            return False  # decided before the next step, by rank 0's clock
        return self.step % self.config.eval_interval == 0 and self.step < self.config.max_iters  # the last: at the end

    def _finish(self) -> Iterator[Event]:
        """The run's end (max_iters, or just before a time budget's deadline): an
        evaluation, the score of the whole validation split, a save. Stopped
        between evaluations: a save that keeps the work done."""
        if self._stop.is_set():
            if self._last_saved_step != self.step:
                yield from self.save()
        elif self._last_scored_step != self.step:
            if self.config.time_budget and self.step < self.config.max_iters:
                self.clock.require_room(self.final_batches)  # a new run that its budget ended at its first step
            yield from self._evaluate_and_save(end=True)

    # --- evaluating and saving ----------------------------------------------------------------

    def estimate_loss(self, split: str) -> float:
        """Mean loss over the split's fixed windows (eval_iters batches), the same at every evaluation."""
        return self.eval_windows[split].loss(self.eval_model, self.device, self.dtype)

    def _evaluate(self) -> Iterator[EvalEvent]:
        """The loss on both splits and a short sample, on rank 0 alone (the
        other ranks go on to the next collective and wait there)."""
        if not self.world.is_main:
            return
        self._require_finite_weights()
        self._last_evaluated_step = self.step
        self.model.eval()
        train_loss = self.estimate_loss("train")  # the first call pays for warm-up, and compiling with compile = true
        evaluating = time.perf_counter()
        val_loss = self.estimate_loss("val")
        self._eval_batch_seconds = (time.perf_counter() - evaluating) / self.config.eval_iters  # the score's pace
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise self._diverged(f"the evaluation loss became {train_loss} (train), {val_loss} (val)", self.step)
        sample = sample_text(self.model, self.tokenizer, max_new_tokens=SAMPLE_TOKENS, seed=self.config.seed)
        self.model.train()
        self.best_val_loss = min(self.best_val_loss, val_loss)
        learning_by_heart = memorising(train_loss, val_loss, self.smallest_gap)
        self.smallest_gap = min(self.smallest_gap, val_loss - train_loss)
        # Nats per token -> bits per character: comparable across tokenizers.
        train_bpc = train_loss / (math.log(2) * self.splits.train_chars_per_token)
        val_bpc = val_loss / (math.log(2) * self.splits.val_chars_per_token)
        yield EvalEvent(self.step, train_loss, val_loss, train_bpc, val_bpc,
                        self.best_val_loss, sample, self.time_spent, learning_by_heart)

    def _score_validation_split(self) -> Iterator[FinalScoreEvent]:
        """The run's figure, on rank 0: its last weights' loss on the whole validation split."""
        self._last_scored_step = self.step
        if not self.world.is_main:
            return
        self.model.eval()
        self.final_score = score_split(self.eval_model, self.splits.val, self.model_config.block_size,
                                       self.config.batch_size, self.splits.val_chars_per_token, self.device,
                                       self.dtype)
        self.model.train()
        if self.clock:
            self.clock.count()  # the score's time counts, in the event and in the checkpoint
        score = self.final_score
        yield FinalScoreEvent(self.step, score.loss, score.bpc, score.tokens, self.time_spent)

    def _evaluate_and_save(self, end: bool = False) -> Iterator[Event]:
        """Evaluate on the fixed windows and save. end: the run's end, where the
        validation split is scored too, before the save, so that the checkpoint's
        time spent counts it."""
        started = time.perf_counter()
        if self._last_evaluated_step != self.step:  # a time budget's last evaluation may fall on the last step
            yield from self._evaluate()
        if end:
            yield from self._score_validation_split()
        yield from self.save()  # on every rank: it needs all of their batch streams
        if self.clock and not end:  # the end of the run must fit before the deadline. The latest evaluation is
            # the best guess of its time (the first pays for warm-up); the split's score runs batches as fast.
            split_batches = self.final_batches - 2 * self.config.eval_iters
            self.clock.final_seconds = time.perf_counter() - started + split_batches * self._eval_batch_seconds

    def save(self) -> Iterator[Event]:
        """Save the run's whole state to checkpoint_path, if there is one. A
        failed write is reported as an event, not raised: training can go on,
        and the previous file is intact. Under torchrun every rank calls it
        together and rank 0 writes the file."""
        path = self.checkpoint_path
        if path is None:
            return
        self._require_finite_weights()
        self._last_saved_step = self.step
        if self.clock:
            self.clock.count()
        try:
            save_state(self, self._save_to)
        except OSError as e:
            yield SaveFailedEvent(self.step, path, f"could not save {path}: {e.strerror or e}")
            return
        if self.world.is_main:
            yield SavedEvent(self.step, path)

    # --- for the front ends -------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the run is over: max_iters reached, or its time budget used."""
        if self.config.time_budget and self.step < self.config.max_iters:
            return self.time_spent >= self.config.time_budget - FINISHED_MARGIN
        return self.step >= self.config.max_iters

    @property
    def time_spent(self) -> float:
        """Seconds the run has used (of its time budget, if it has one), all sessions, pauses not."""
        return self.clock.used if self.clock else self._time_spent

    @time_spent.setter
    def time_spent(self, seconds: float) -> None:
        self._time_spent = seconds

    @property
    def num_parameters(self) -> int:
        return self.model.num_parameters()

    @property
    def tokens_per_step(self) -> int:
        """Training tokens in one optimizer step, over every process of the run."""
        return self.config.batch_size * self.model_config.block_size * self.config.grad_accum

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked for, here or (under torchrun) on another rank."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the loop to end before its next step; safe from any thread."""
        self._stop.set()

    def snapshot(self) -> GPT:
        """A copy of the model between two updates, in eval mode, for sampling
        from another thread while training goes on."""
        with self._update_lock:
            weights = {name: tensor.clone() for name, tensor in self.model.state_dict().items()}
        return GPT.holding(self.model_config, weights).eval()

    def _diverged(self, what: str, step: int) -> TrainingDiverged:
        return TrainingDiverged(f"{what} at step {step} (lr {self.config.lr:g}); {self._kept()}; try a lower lr")

    def _kept(self) -> str:
        return f"{self.checkpoint_path} keeps its last good weights" if self.checkpoint_path else "nothing was saved"

    def _require_finite_weights(self) -> None:
        # An update can overflow the weights even when the loss before it was fine.
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise self._diverged("the weights became inf or NaN", self.step)
