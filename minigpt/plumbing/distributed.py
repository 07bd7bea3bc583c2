"""Training as one of several processes, under torchrun.

torchrun starts one process per GPU (or per share of a CPU) and tells each
where it stands through environment variables (RANK, LOCAL_RANK,
WORLD_SIZE, and MASTER_ADDR/MASTER_PORT for the rendezvous). World reads
them and joins the process group: NCCL on CUDA, gloo on the CPU.

Outside torchrun the world is one process, and every collective below is
a plain function of the local values, so the trainer has a single code path.

The trainer meets this module in three places, each one line of its loop:
agree_on_next_step (every rank takes the same decision before a step),
gradient_exchange (around a micro-batch's forward and backward: DDP averages
the gradients in the last one only) and World.slots (which micro-batches, and
so which batch streams, are this rank's).

The collectives exchange tensors only, never pickles: a peer's bytes are
never run (see share_from_main).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from minigpt.plumbing.config import ConfigError
from minigpt.plumbing.errors import MiniGPTError

if TYPE_CHECKING:
    from minigpt.plumbing.clock import BudgetClock

TIMEOUT_VARIABLE = "MINIGPT_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 300.0  # seconds a rank waits for the others: rank 0 evaluates and saves while they wait


class DistributedError(MiniGPTError, RuntimeError):
    """The process group cannot be set up, or another process of the run is gone."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0  # the process's number on its machine: which GPU it drives
    size: int = 1

    @property
    def is_distributed(self) -> bool:
        return self.size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        """Rank 0 evaluates, samples, logs, shows progress and saves."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The device this rank trains on: its own GPU on a machine with several."""
        if device.type == "cuda" and self.is_distributed:
            return torch.device("cuda", self.local_rank)
        return device

    def slots(self, grad_accum: int) -> range:
        """The micro-batches of an optimizer step that this rank runs: rank r has
        slots r*k to r*k+k-1. Each slot has its own batch stream, seeded by its
        number, so the same data comes whatever the number of processes sharing them."""
        steps = micro_steps(grad_accum, self.size)
        return range(self.rank * steps, (self.rank + 1) * steps)

    def data_parallel(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model as training steps call it: under torchrun wrapped in
        DistributedDataParallel, which averages the gradients over the ranks in backward."""
        if not self.is_distributed:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def agree(self, values: list[float]) -> list[float]:
        """Each value's maximum over the ranks: one small collective, which every
        rank must reach (so that a decision to stop or evaluate is the same everywhere)."""
        if not self.is_distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=_comm_device())
        _collective(dist.all_reduce, tensor, op=dist.ReduceOp.MAX)
        return tensor.tolist()

    def require_same(self, values: dict[str, int]) -> None:
        """Stop, on every rank, if any of these differs between the ranks: they
        would otherwise train different models without a word."""
        if not self.is_distributed:
            return
        numbers = list(values.values())
        agreed = self.agree(numbers + [-number for number in numbers])  # the maxima, and minus the minima
        highest, lowest = agreed[:len(numbers)], [-value for value in agreed[len(numbers):]]
        for name, high, low in zip(values, highest, lowest, strict=True):
            if high != low:
                raise DistributedError(f"the ranks disagree on {name} ({low:,.0f} on one, {high:,.0f} on "
                                       "another): every machine must read the same corpus, config and checkpoint "
                                       "(put --data and --out in a folder they share)")

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """A scalar tensor averaged over the ranks."""
        if not self.is_distributed:
            return value
        tensor = value.detach().to(_comm_device(), torch.float64).reshape(1)
        _collective(dist.all_reduce, tensor, op=dist.ReduceOp.SUM)
        return tensor / self.size

    def gather(self, tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Every rank's tensors (the same number and shapes on each rank), by rank."""
        if not self.is_distributed:
            return [tensors]
        gathered = []
        for tensor in tensors:
            local = tensor.to(_comm_device())
            parts = [torch.empty_like(local) for _ in range(self.size)]
            _collective(dist.all_gather, parts, local)
            gathered.append([part.to(tensor.device) for part in parts])
        return [list(by_rank) for by_rank in zip(*gathered, strict=True)]

    def share_from_main(self, value: object) -> object:
        """Rank 0's value (plain JSON data) on every rank, e.g. the shape it chose."""
        if not self.is_distributed:
            return value
        data = json.dumps(value).encode() if self.is_main else b""
        length = torch.tensor([len(data)], dtype=torch.int64, device=_comm_device())
        _collective(dist.broadcast, length, src=0)
        buffer = (torch.frombuffer(bytearray(data), dtype=torch.uint8) if self.is_main
                  else torch.zeros(int(length), dtype=torch.uint8)).to(_comm_device())
        _collective(dist.broadcast, buffer, src=0)
        return json.loads(bytes(buffer.cpu().tolist()).decode())


SINGLE = World()


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


@dataclass(frozen=True)
class NextStep:
    """What every rank does before its next step: the same on all of them."""
    train: bool  # take another step
    evaluate: bool  # evaluate and save first (a time budget's evaluations fall due by rank 0's clock)
    progress: float | None  # where a time budget's schedule stands, 0 to 1; None without a budget


def agree_on_next_step(world: World, clock: BudgetClock, stop: threading.Event, eval_iters: int,
                       done: bool) -> NextStep:
    """Whether to take another step, and whether to evaluate first. One small
    collective gives every rank the same answer, so that no rank waits for
    another that has gone: all stop when any was asked to (stop is set here
    too, so that this rank ends the same way), and rank 0's clock alone says
    when a time budget is spent, an evaluation is due and where the schedule
    stands. done: max_iters is reached."""
    by_clock = bool(clock.budget) and world.is_main
    out_of_time = by_clock and clock.time_to_stop(eval_iters)
    stop_asked = stop.is_set()
    evaluate = by_clock and not (stop_asked or out_of_time or done) and clock.time_to_evaluate()
    progress = clock.progress(eval_iters) if by_clock else 0.0
    stop_asked, out_of_time, evaluate, progress = world.agree([stop_asked, out_of_time, evaluate, progress])
    if stop_asked:
        stop.set()
    return NextStep(train=not (done or stop_asked or out_of_time), evaluate=bool(evaluate),
                    progress=progress if clock.budget else None)


@contextlib.contextmanager
def gradient_exchange(model: torch.nn.Module, last: bool) -> Iterator[None]:
    """Around one micro-batch's forward and backward. Under DDP the gradients
    are averaged over the ranks in the last micro-batch's backward only: the
    others, forward and backward both, run under no_sync. An exchange that
    fails is a lost peer, said in one line."""
    parallel = isinstance(model, DistributedDataParallel)
    try:
        with model.no_sync() if parallel and not last else contextlib.nullcontext():
            yield
    except RuntimeError as e:  # DDP exchanges the gradients in backward
        if parallel and is_communication_error(e):
            raise lost_peer(e) from None
        raise


def from_environment() -> World | None:
    """The world torchrun describes in the environment, or None outside torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    try:
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise DistributedError(f"RANK={os.environ['RANK']!r}, WORLD_SIZE={os.environ['WORLD_SIZE']!r}: expected "
                               "integers, as torchrun sets them") from None
    if not 0 <= rank < size:
        raise DistributedError(f"RANK={rank} with WORLD_SIZE={size}: expected 0 <= RANK < WORLD_SIZE")
    return World(rank, local_rank, size)


def join(world: World, device_name: str) -> World:
    """Join the process group of the run torchrun started: NCCL when this
    process trains on CUDA, gloo otherwise."""
    from minigpt.plumbing.device import pick_device

    backend = "nccl" if pick_device(device_name).type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)  # before the group: NCCL works on the current GPU
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.size,
                                timeout=timedelta(seconds=timeout_seconds()))
    except (RuntimeError, ValueError) as e:  # a missing MASTER_ADDR, an unreachable rendezvous
        raise DistributedError(f"rank {world.rank} of {world.size} cannot join the process group "
                               f"({_first_line(e)}); launch with torchrun") from None
    return world


def leave(finished_cleanly: bool) -> None:
    """Leave the process group, if this process joined one. After a clean end
    every rank first waits for the others: a rank that tore its group down while
    another still exchanged could abort it (gloo's threads, at exit). After an
    error the others may never come, so none is waited for."""
    if not dist.is_initialized():
        return
    if finished_cleanly:
        try:
            _collective(dist.barrier)
        except DistributedError:
            pass  # another rank has gone already: nothing left to wait for
    dist.destroy_process_group()


def timeout_seconds() -> float:
    """How long a rank waits for the others before giving up ($MINIGPT_DIST_TIMEOUT, seconds)."""
    text = os.environ.get(TIMEOUT_VARIABLE)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise DistributedError(f"{TIMEOUT_VARIABLE}={text!r}: expected a positive number of seconds")
    return seconds


def lost_peer(error: BaseException) -> DistributedError:
    """The one-line error for a collective that failed: another process has
    died, or the network between them has."""
    return DistributedError(f"rank {dist.get_rank() if dist.is_initialized() else '?'} lost contact with the "
                            f"other processes of the run ({_first_line(error)}); another rank died or the "
                            "network failed")


def is_communication_error(error: BaseException) -> bool:
    """Whether an error raised inside DDP's backward came from the exchange
    between ranks: there gloo raises a plain RuntimeError naming itself."""
    return isinstance(error, dist.DistError) or any(word in str(error) for word in COMMUNICATION_WORDS)


COMMUNICATION_WORDS = ("gloo", "NCCL", "c10d", "Connection closed", "Connection reset")


def _collective(operation, *args, **kwargs) -> None:
    try:
        operation(*args, **kwargs)
    except RuntimeError as e:  # DistBackendError (a RuntimeError), or gloo's plain one, for a lost peer
        raise lost_peer(e) from None


def _comm_device() -> torch.device:
    # NCCL exchanges tensors on this rank's GPU, gloo on the CPU.
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _first_line(error: BaseException) -> str:
    """The gist of a backend's message: its first sentence, without the source location gloo starts it with."""
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", str(error).strip())
    first = re.split(r"\.\s|\n", text, maxsplit=1)[0].strip()
    return first[:160] or type(error).__name__
