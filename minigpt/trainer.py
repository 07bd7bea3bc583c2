"""The training loop, exposed as a stream of plain events.

    trainer = Trainer(config, corpus)
    for event in trainer.run():
        ...  # StepEvent after every step, EvalEvent after every evaluation

The library never prints: a CLI draws a progress bar from the events, a
Textual worker posts them to the screen. Between two events the loop is
suspended, so a consumer pauses training simply by not asking for the next
one, and stops it with request_stop() (checked before every step).

Under torchrun each process runs a Trainer with the same config and its own
World (minigpt.plumbing.distributed): the model is wrapped in DistributedDataParallel,
each rank draws its own batches, and rank 0 alone evaluates, samples and
writes the checkpoint. Every decision that would otherwise differ between
ranks (stop, evaluate, where a time budget's schedule stands) is taken by a
collective before each step, so that no rank waits for another that has gone.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from minigpt.data import BatchSampler, make_tokenizer, split_corpus
from minigpt.model import GPT, ModelConfig
from minigpt.plumbing.checkpoint import Checkpoint, save_checkpoint
from minigpt.plumbing.clock import BudgetClock
from minigpt.plumbing.config import ConfigError, TrainConfig
from minigpt.plumbing.corpus import Corpus
from minigpt.plumbing.device import autocast, device_memory, pick_device, pick_dtype
from minigpt.plumbing.distributed import SINGLE, DistributedError, World, is_communication_error, lost_peer
from minigpt.plumbing.errors import MiniGPTError
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


@dataclass(frozen=True)
class SavedEvent:
    step: int
    path: Path


@dataclass(frozen=True)
class SaveFailedEvent:
    step: int
    path: Path
    error: str


Event = StepEvent | EvalEvent | SavedEvent | SaveFailedEvent


def learning_rate(step: int, config: TrainConfig, progress: float | None = None) -> float:
    """Linear warmup to lr over warmup_iters steps, then cosine decay to min_lr:
    at max_iters, or, with a time budget, when progress (the share of the
    budget's schedule gone, from its clock) reaches 1."""
    warmup = config.lr * (step + 1) / (config.warmup_iters + 1)
    if progress is not None:
        return min(warmup, _cosine(progress, config))
    if step < config.warmup_iters:
        return warmup
    decay_steps = max(config.max_iters - config.warmup_iters, 1)
    return _cosine(min((step - config.warmup_iters) / decay_steps, 1.0), config)


def _cosine(progress: float, config: TrainConfig) -> float:
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def training_memory(model_config: ModelConfig, batch_size: int) -> tuple[int, int]:
    """The model's parameter count, and a lower bound on the bytes training it
    takes: float32 weights, gradients and AdamW's two moments (16 bytes a
    parameter), plus one batch's logits and their gradient. Activations come on top."""
    with torch.device("meta"):  # shapes only, nothing allocated
        parameters = GPT(model_config).num_parameters()
    logits = batch_size * model_config.block_size * model_config.vocab_size
    return parameters, 16 * parameters + 2 * 4 * logits


def check_fits_in_memory(model_config: ModelConfig, batch_size: int, device: torch.device) -> None:
    """Refuse a model that cannot fit, before allocating it: a huge d_model or
    n_layers would otherwise exhaust the machine's memory."""
    parameters, needed = training_memory(model_config, batch_size)
    available = device_memory(device)
    if available is not None and needed > available:
        raise ConfigError(
            f"a model of {parameters:,} parameters (d_model {model_config.d_model}, n_layers {model_config.n_layers}) "
            f"with batch_size {batch_size} and block_size {model_config.block_size} needs at least "
            f"{needed / 2**30:,.1f} GiB to train, but the {device.type} has {available / 2**30:,.1f} GiB; "
            "lower d_model, n_layers, batch_size or block_size")


def make_optimizer(model: GPT, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only: decaying gains, biases
    and LayerNorm weights toward zero would only hurt."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": matrices, "weight_decay": config.weight_decay},
              {"params": others, "weight_decay": 0.0}]
    fused = device.type in ("cuda", "cpu")  # one kernel for the whole update
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.beta2), fused=fused)


def micro_steps(grad_accum: int, world_size: int) -> int:
    """The micro-batches each process runs per optimizer step. grad_accum counts
    them over all processes, so that an optimizer step sees batch_size x
    block_size x grad_accum tokens whatever the number of processes."""
    if grad_accum % world_size:
        raise ConfigError(f"grad_accum = {grad_accum} must be a multiple of the {world_size} processes of this run: "
                          "it counts the micro-batches of an optimizer step over all of them, so that a step sees "
                          f"the same tokens on any number of processes; e.g. --grad-accum {world_size} (with "
                          f"batch_size / {world_size} for the tokens per step of grad_accum 1)")
    return grad_accum // world_size


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
        self.micro_steps = micro_steps(config.grad_accum, world.size)
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

        world.require_same({"the corpus's length in characters": corpus.length, "the vocabulary's size":
                            self.tokenizer.vocab_size, "the step to resume from": resume.step if resume else 0})
        self.model = GPT(self.model_config).to(self.device)  # saved and sampled: never wrapped
        self.eval_model = torch.compile(self.model) if config.compile else self.model
        self.forward_model = self._wrap_for_ranks(self.eval_model)  # what training steps call
        if world.rank:
            torch.manual_seed(config.seed + world.rank)  # the same weights everywhere, but each rank its own dropout
        self.optimizer = make_optimizer(self.model, config, self.device)
        self.streams = self._batch_streams()
        self.notes: list[str] = []  # what the user should know about a resume
        self.step = 0
        self.best_val_loss = float("inf")
        self.time_spent = 0.0  # seconds the run has used (of its time budget, if it has one), all sessions
        self.clock: BudgetClock | None = None  # while run() goes on
        self._progress: float | None = None  # where a time budget's schedule stands, as agreed before a step
        self._last_saved_step: int | None = None
        self._stop = threading.Event()
        self._update_lock = threading.Lock()  # held while the weights change
        if resume:
            self._restore(resume)

    def _wrap_for_ranks(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel under torchrun: it averages the gradients over the ranks in backward."""
        if not self.world.is_distributed:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def _batch_streams(self) -> list[BatchSampler]:
        """A batch sampler for each micro-batch of an optimizer step (slot) that
        this rank runs: rank r has slots r*k to r*k+k-1, each seeded by its slot.
        The streams belong to the slots, not to the ranks, so the same data comes
        whatever the number of processes sharing them."""
        first = self.world.rank * self.micro_steps
        return [BatchSampler(self.splits.train, self.config.batch_size, self.model_config.block_size,
                             self.config.seed + slot) for slot in range(first, first + self.micro_steps)]

    @property
    def finished(self) -> bool:
        """Whether the run is over: max_iters reached, or its time budget used."""
        if self.config.time_budget and self.step < self.config.max_iters:
            return self.time_spent >= self.config.time_budget - FINISHED_MARGIN
        return self.step >= self.config.max_iters

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

    def run(self, started: float | None = None) -> Iterator[Event]:
        """Train until max_iters, the end of the time budget or a stop request.
        Evaluate and save every eval_interval steps (with a time budget: at
        intervals of the budget) and once more at the end. started is the
        time.monotonic() at which the program started: a time budget counts
        the start-up too."""
        self._stop.clear()
        self.clock = BudgetClock(self.config.time_budget, self.time_spent, started)
        tokens_per_step = self.tokens_per_step
        self.model.train()
        try:
            while True:
                keep_going, evaluate = self._agree_on_next_step()
                if evaluate:  # a time budget's evaluations fall due by rank 0's clock
                    yield from self._evaluate_and_save()
                    continue  # it took time: decide again
                if not keep_going:
                    break
                lr, loss = self._train_step()
                self.clock.step_done()  # its moving average of a step's time keeps tokens/s and the ETA steady
                self.time_spent = self.clock.used
                step_seconds = self.clock.step_seconds
                yield StepEvent(self.step, self.config.max_iters, loss, lr, tokens_per_step / step_seconds,
                                self.time_spent, *self._eta_and_progress(step_seconds))
                if self._evaluation_due():
                    yield from self._evaluate_and_save()
            if self.config.time_budget and not self._stop.is_set() and self._last_saved_step != self.step:
                yield from self._evaluate_and_save()  # the budget's end: the last evaluation and save
            elif self._stop.is_set() and self._last_saved_step != self.step:
                yield from self.save()  # stopped between evaluations: keep the work done
        except DistributedError as e:  # nothing is saved without every rank: the last save stays as it was
            raise DistributedError(f"{e}; {self._kept()}") from None
        finally:
            self.clock = None  # a save between runs must not count the idle time since

    def _agree_on_next_step(self) -> tuple[bool, bool]:
        """Whether to take another step, and whether to evaluate first. Under
        torchrun one collective gives every rank the same answer: all stop when
        any was asked to (Ctrl+C, SIGTERM), and rank 0's clock alone says when a
        time budget is spent, an evaluation is due and where the schedule stands."""
        self.clock.count(after_wait=True)
        self.time_spent = self.clock.used
        budget, main = self.config.time_budget, self.world.is_main
        stop_asked = self._stop.is_set()
        out_of_time = bool(budget and main and self.clock.time_to_stop(self.config.eval_iters))
        done = self.step >= self.config.max_iters
        evaluate = bool(budget and main and not (stop_asked or out_of_time or done) and self.clock.time_to_evaluate())
        progress = self.clock.progress(self.config.eval_iters) if budget and main else 0.0
        stop_asked, out_of_time, evaluate, progress = self.world.agree([stop_asked, out_of_time, evaluate, progress])
        if stop_asked:
            self._stop.set()  # asked on another rank: this one ends the same way
        self._progress = progress if budget else None
        return not (done or stop_asked or out_of_time), bool(evaluate)

    def _eta_and_progress(self, step_seconds: float) -> tuple[float, float]:
        if self.config.time_budget:
            return max(self.clock.left, 0.0), min(self.clock.used / self.clock.budget, 1.0)
        return (self.config.max_iters - self.step) * step_seconds, self.step / self.config.max_iters

    def _evaluation_due(self) -> bool:
        if self.config.time_budget:
            return False  # decided before the next step, by _agree_on_next_step
        return self.step % self.config.eval_interval == 0 or self.step == self.config.max_iters

    def _train_step(self) -> tuple[float, float]:
        lr = learning_rate(self.step, self.config, self._progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_value = self._accumulate_gradients()
        if not math.isfinite(loss_value):  # the same mean on every rank: all stop, before the update
            raise self._diverged(f"loss became {loss_value}", self.step + 1)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        with self._update_lock:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return lr, loss_value

    def _accumulate_gradients(self) -> float:
        """Forward and backward over this rank's micro-batches, each loss scaled
        so that the gradient is their mean; return the mean loss over all ranks.
        DDP averages the gradients over the ranks in the last backward only: the
        others, forward and backward both, run under no_sync."""
        total = torch.zeros((), device=self.device)
        for i, stream in enumerate(self.streams):
            with self._gradient_sync(last=i == len(self.streams) - 1):
                x, y = stream.next_batch()
                with autocast(self.device, self.dtype):
                    _, loss = self.forward_model(x.to(self.device), y.to(self.device))
                try:
                    (loss / len(self.streams)).backward()
                except RuntimeError as e:  # DDP exchanges the gradients in here
                    if self.world.is_distributed and is_communication_error(e):
                        raise lost_peer(e) from None
                    raise
            total += loss.detach().float()
        return self.world.mean(total / len(self.streams)).item()

    def _gradient_sync(self, last: bool) -> contextlib.AbstractContextManager:
        if last or not isinstance(self.forward_model, DistributedDataParallel):
            return contextlib.nullcontext()
        return self.forward_model.no_sync()

    @torch.no_grad()
    def estimate_loss(self, split: str) -> float:
        """Mean loss over eval_iters batches. Its own generator, seeded by the
        step, leaves the training batches and dropout untouched."""
        data = self.splits.train if split == "train" else self.splits.val
        sampler = BatchSampler(data, self.config.batch_size, self.model_config.block_size,
                               seed=self.config.seed + self.step)
        total = 0.0
        for _ in range(self.config.eval_iters):
            x, y = sampler.next_batch()
            with autocast(self.device, self.dtype):
                _, loss = self.eval_model(x.to(self.device), y.to(self.device))
            total += loss.item()
        return total / self.config.eval_iters

    def _diverged(self, what: str, step: int) -> TrainingDiverged:
        return TrainingDiverged(f"{what} at step {step} (lr {self.config.lr:g}); {self._kept()}; try a lower lr")

    def _kept(self) -> str:
        return f"{self.checkpoint_path} keeps its last good weights" if self.checkpoint_path else "nothing was saved"

    def _require_finite_weights(self) -> None:
        # An update can overflow the weights even when the loss before it was fine.
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise self._diverged("the weights became inf or NaN", self.step)

    def _evaluate_and_save(self) -> Iterator[Event]:
        if not self.world.is_main:
            yield from self.save()  # rank 0 evaluates meanwhile; saving needs every rank's batch streams
            return
        started = time.perf_counter()
        self._require_finite_weights()
        self.model.eval()
        train_loss, val_loss = self.estimate_loss("train"), self.estimate_loss("val")
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise self._diverged(f"the evaluation loss became {train_loss} (train), {val_loss} (val)", self.step)
        sample = sample_text(self.model, self.tokenizer, max_new_tokens=SAMPLE_TOKENS, seed=self.config.seed)
        self.model.train()
        self.best_val_loss = min(self.best_val_loss, val_loss)
        # Nats per token -> bits per character: comparable across tokenizers.
        train_bpc = train_loss / (math.log(2) * self.splits.train_chars_per_token)
        val_bpc = val_loss / (math.log(2) * self.splits.val_chars_per_token)
        yield EvalEvent(self.step, train_loss, val_loss, train_bpc, val_bpc,
                        self.best_val_loss, sample, self.time_spent)
        yield from self.save()
        if self.clock:  # the final evaluation must fit before the deadline. The latest is the best guess of
            self.clock.final_seconds = time.perf_counter() - started  # its time: the first pays for warm-up

    def save(self) -> Iterator[Event]:
        """Save a checkpoint to checkpoint_path, if there is one. A failed
        write is reported as an event, not raised: training can go on, and the
        previous file is intact. Under torchrun every rank calls it together
        (it gathers their batch streams) and rank 0 writes the file."""
        path = self.checkpoint_path
        if path is None:
            return
        self._require_finite_weights()
        self._last_saved_step = self.step
        if self.clock:
            self.clock.count()
            self.time_spent = self.clock.used
        streams = [state for rank in self.world.gather([s.generator.get_state() for s in self.streams])
                   for state in rank]
        if not self.world.is_main:
            return
        try:
            save_checkpoint(self._save_to, self.checkpoint(streams))
        except OSError as e:
            yield SaveFailedEvent(self.step, path, f"could not save {path}: {e.strerror or e}")
        else:
            yield SavedEvent(self.step, path)

    def checkpoint(self, batch_streams: list[torch.Tensor] | None = None) -> Checkpoint:
        """What save() writes. batch_streams: the generator state of every slot's
        batch sampler, in slot order (by default this process's own)."""
        if batch_streams is None:
            batch_streams = [stream.generator.get_state() for stream in self.streams]
        rng = {"torch": torch.get_rng_state(), "batch_streams": batch_streams}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return Checkpoint(
            model_state=self.model.state_dict(),
            model_config=self.model_config,
            tokenizer=self.tokenizer,
            step=self.step,
            train_config=self.config.to_dict(),
            best_val_loss=self.best_val_loss,
            optimizer_state=self.optimizer.state_dict(),
            rng_state=rng,
            time_spent=self.time_spent,
        )

    def _restore(self, resume: Checkpoint) -> None:
        self.model.load_state_dict(resume.model_state)
        if resume.optimizer_state:
            self.optimizer.load_state_dict(resume.optimizer_state)
            # The saved state carries the old run's weight decay and betas; this run's config wins.
            matrices, others = self.optimizer.param_groups
            matrices["weight_decay"], others["weight_decay"] = self.config.weight_decay, 0.0
            for group in self.optimizer.param_groups:
                group["betas"] = (0.9, self.config.beta2)
        self.step = resume.step
        self.best_val_loss = resume.best_val_loss
        self.time_spent = resume.time_spent
        rng = resume.rng_state or {}
        if "torch" in rng and self.world.is_main:  # rank 0's dropout stream; the others keep their seeds
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(rng["cuda"])
        self._restore_streams(rng)

    def _restore_streams(self, rng: dict) -> None:
        """Each slot's batch stream goes on where it stopped, whichever rank runs
        it now: a resume is exact on any number of processes that divides
        grad_accum. With another grad_accum, slots the checkpoint lacks start
        from their seed, and a note says the data order differs from an unbroken run."""
        saved = rng.get("batch_streams") or ([rng["batches"]["generator"]] if "batches" in rng else [])
        if not saved:
            return
        first = self.world.rank * self.micro_steps
        for slot, stream in enumerate(self.streams, start=first):
            if slot < len(saved):
                stream.generator.set_state(saved[slot])
        if len(saved) != self.config.grad_accum:
            change = "new ones start from their seed" if len(saved) < self.config.grad_accum else "extra ones end"
            self.notes.append(f"the checkpoint holds {len(saved)} batch stream(s) and grad_accum is "
                              f"{self.config.grad_accum}: the {change}, so the data order differs from an "
                              "unbroken run's")

    def snapshot(self) -> GPT:
        """A copy of the model between two updates, in eval mode, for sampling
        from another thread while training goes on."""
        with self._update_lock:
            weights = {name: tensor.clone() for name, tensor in self.model.state_dict().items()}
        return GPT.holding(self.model_config, weights).eval()
