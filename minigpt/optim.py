"""How the weights move: the optimizer, and the learning-rate schedule.

Two optimizers (config key `optimizer`):
- adamw: AdamW for every weight, with weight decay on the matrices only.
- muon: Muon for the matrices inside the Transformer blocks (attention and
  MLP), AdamW for the rest (embeddings, the output head, gains and biases).
  Muon keeps SGD's momentum, but before each update it replaces the momentum
  of a matrix by the nearest orthogonal matrix, found by a few Newton-Schulz
  iterations: every direction the matrix acts in then moves by the same
  amount, where plain momentum is dominated by a few large ones. On GPT-sized
  models it reaches AdamW's loss in about two thirds of the tokens
  (KellerJordan/modded-nanogpt). An embedding is a lookup table, not a map
  between directions, so it stays on AdamW, as do vectors.

Two schedules (config key `schedule`), both after a linear warmup:
- cosine: from lr down to min_lr along half a cosine.
- wsd: warmup, stable, decay: lr held flat, then a straight line to min_lr
  over the last decay_share of training (a long flat phase makes fast
  progress; the decay then settles the weights).
Either is laid over the steps (max_iters) or, with a time budget, over the
share of the budget used, as the clock says at each step.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch import nn

from minigpt.plumbing.config import TrainConfig

# Newton-Schulz: X <- aX + b(XXᵀ)X + c(XXᵀ)²X, five times. These coefficients (Keller Jordan's) push
# small singular values up fast rather than converging exactly: the result's singular values land
# around 0.7 to 1.2 instead of 1, which trains as well, in few iterations.
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)
NEWTON_SCHULZ_STEPS = 5
MOMENTUM_START = 0.85  # Muon's momentum at step 0, warmed up to muon_momentum


# --- the schedule ----------------------------------------------------------------------------------

def learning_rate(step: int, config: TrainConfig, progress: float | None = None) -> float:
    """AdamW's learning rate at step: a linear warmup to lr over warmup_iters
    steps, then the decay of config.schedule, reaching min_lr at max_iters or,
    with a time budget, when progress (the share of the budget's schedule gone,
    from its clock) reaches 1."""
    warmup = config.lr * (step + 1) / (config.warmup_iters + 1)
    if progress is not None:
        return min(warmup, _decay(progress, config))
    if step < config.warmup_iters:
        return warmup
    decay_steps = max(config.max_iters - config.warmup_iters, 1)
    return _decay(min((step - config.warmup_iters) / decay_steps, 1.0), config)


def _decay(progress: float, config: TrainConfig) -> float:
    """The rate after warmup, at progress from 0 to 1."""
    if config.schedule == "wsd":
        decay_from = 1.0 - config.decay_share
        if progress <= decay_from:
            return config.lr
        share_left = (1.0 - progress) / config.decay_share
        return config.min_lr + share_left * (config.lr - config.min_lr)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def muon_momentum(step: int, config: TrainConfig) -> float:
    """Muon's momentum, warmed linearly from MOMENTUM_START over muon_momentum_warmup
    steps: early on the gradient turns fast, and a long memory would follow stale directions."""
    if step >= config.muon_momentum_warmup:
        return config.muon_momentum
    share = step / config.muon_momentum_warmup
    return MOMENTUM_START + share * (config.muon_momentum - MOMENTUM_START)


# --- Muon ------------------------------------------------------------------------------------------

def orthogonalise(matrices: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> torch.Tensor:
    """(K, m, n) -> (K, m, n): each matrix with its singular values pushed to
    about 1 and its singular vectors kept, by Newton-Schulz iterations in the
    tensor's own dtype. The K matrices go through each multiply together."""
    a, b, c = NEWTON_SCHULZ
    tall = matrices.size(-2) > matrices.size(-1)
    x = matrices.mT if tall else matrices  # X Xᵀ over the shorter side: the cheaper product
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # singular values now at most 1
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if tall else x


def orthogonalise_all(matrices: list[torch.Tensor], dtype: torch.dtype) -> list[torch.Tensor]:
    """Each matrix orthogonalised in dtype; those of one shape (a tall one
    counting as its transpose) in one batched multiply."""
    wide = [m.mT if m.size(0) > m.size(1) else m for m in matrices]
    by_shape: dict[torch.Size, list[int]] = defaultdict(list)
    for i, m in enumerate(wide):
        by_shape[m.shape].append(i)
    done: list[torch.Tensor] = [torch.empty(0)] * len(matrices)
    for indices in by_shape.values():
        batch = orthogonalise(torch.stack([wide[i] for i in indices]).to(dtype))
        for i, result in zip(indices, batch, strict=True):
            done[i] = result.mT if matrices[i].size(0) > matrices[i].size(1) else result
    return [d.to(m.dtype) for d, m in zip(done, matrices, strict=True)]


class Muon(torch.optim.Optimizer):
    """Nesterov momentum on each matrix, orthogonalised before the update.

    A group's `pieces` says how many matrices are stacked in each of its
    parameters along the first dimension (3 for attention's fused query, key
    and value weights): each is a map of its own, orthogonalised on its own.
    dtype: the number format of the Newton-Schulz products (float32 on a CPU
    without fast bfloat16, where bfloat16 products run many times slower)."""

    def __init__(self, params, lr: float, momentum: float, weight_decay: float = 0.0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "pieces": 1})
        self.dtype = dtype

    @torch.no_grad()
    def step(self) -> None:
        """Update every matrix that has a gradient; their momenta are orthogonalised together, by shape."""
        params, groups, momenta = [], [], []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    params.append(p)
                    groups.append(group)
                    momenta.append(self._nesterov_momentum(p, group["momentum"]))
        pieces = [piece for momentum, group in zip(momenta, groups, strict=True)
                  for piece in momentum.chunk(group["pieces"])]
        directions = iter(orthogonalise_all(pieces, self.dtype))
        for p, group in zip(params, groups, strict=True):
            parts = [next(directions) for _ in range(group["pieces"])]
            rows, columns = parts[0].shape
            lr = group["lr"]
            p.mul_(1 - lr * group["weight_decay"])  # decoupled weight decay
            # An orthogonal update of a tall matrix has smaller entries than a wide one's: scale it up to match.
            p.add_(torch.cat(parts), alpha=-lr * max(1.0, rows / columns) ** 0.5)

    def _nesterov_momentum(self, p: torch.Tensor, momentum: float) -> torch.Tensor:
        """Fold p's gradient into its momentum; return the step it is about to take (Nesterov's look-ahead)."""
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buffer = state["momentum_buffer"]
        buffer.lerp_(p.grad, 1 - momentum)
        return p.grad.lerp(buffer, momentum)


class MuonWithAdamW:
    """Muon for the hidden matrices, AdamW for the other weights, used as one
    optimizer: the same step(), zero_grad(), param_groups and state_dict()."""

    def __init__(self, muon: Muon, adamw: torch.optim.AdamW) -> None:
        self.muon, self.adamw = muon, adamw

    @property
    def param_groups(self) -> list[dict]:
        return self.muon.param_groups + self.adamw.param_groups

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none)
        self.adamw.zero_grad(set_to_none)

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


Optimizer = torch.optim.AdamW | MuonWithAdamW


# --- making one ------------------------------------------------------------------------------------

def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The weights of the linear maps inside the Transformer blocks: what Muon
    moves. Everything else (embeddings, the head, gains, biases) stays on AdamW."""
    return [module.weight for module in model.blocks.modules() if isinstance(module, nn.Linear)]


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device,
                   dtype: torch.dtype = torch.float32) -> Optimizer:
    """config.optimizer's optimizer for model's weights. dtype: the run's number
    format, in which Muon's Newton-Schulz products run too. A model with no linear
    layer in its blocks (the Lab's, without attention and MLP) has nothing for Muon: AdamW alone."""
    if config.optimizer == "adamw" or not hidden_matrices(model):
        optimizer = _adamw(list(model.parameters()), config, device)
    else:
        muon = {id(p) for p in hidden_matrices(model)}
        others = [p for p in model.parameters() if id(p) not in muon]
        optimizer = MuonWithAdamW(Muon(_muon_groups(model), config.muon_lr, config.muon_momentum, dtype=dtype),
                                  _adamw(others, config, device))
    apply_config(optimizer, config)
    return optimizer


def _adamw(params: list[nn.Parameter], config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only: decaying gains, biases
    and LayerNorm weights toward zero would only hurt."""
    groups = [{"params": [p for p in params if p.dim() >= 2]}, {"params": [p for p in params if p.dim() < 2]}]
    fused = device.type in ("cuda", "cpu")  # one kernel for the whole update
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.beta2), fused=fused)


def _muon_groups(model: nn.Module) -> list[dict]:
    """Muon's parameters, attention's fused query-key-value weights in a group of their own (3 pieces each)."""
    fused = {id(module.qkv.weight) for module in model.modules() if _fused_qkv(getattr(module, "qkv", None))}
    matrices = hidden_matrices(model)
    groups = [{"params": [p for p in matrices if id(p) not in fused], "pieces": 1},
              {"params": [p for p in matrices if id(p) in fused], "pieces": 3}]
    return [group for group in groups if group["params"]]


def _fused_qkv(layer: object) -> bool:
    """Whether layer is a linear map to query, key and value side by side, each as wide as its input."""
    return isinstance(layer, nn.Linear) and layer.weight.size(0) == 3 * layer.weight.size(1)


def apply_config(optimizer: Optimizer, config: TrainConfig) -> None:
    """Set the hyperparameters that come from the config: also after loading a
    saved state, which carries the old run's values (this run's config wins)."""
    if isinstance(optimizer, MuonWithAdamW):
        for group in optimizer.muon.param_groups:
            group["weight_decay"] = config.muon_weight_decay
        optimizer = optimizer.adamw
    matrices, others = optimizer.param_groups
    matrices["weight_decay"], others["weight_decay"] = config.weight_decay, 0.0
    for group in optimizer.param_groups:
        group["betas"] = (0.9, config.beta2)


def set_step_hyperparameters(optimizer: Optimizer, config: TrainConfig, step: int, lr: float) -> None:
    """This step's learning rates (AdamW's is lr; Muon's is muon_lr on the same
    schedule) and Muon's momentum."""
    adamw = optimizer
    if isinstance(optimizer, MuonWithAdamW):
        for group in optimizer.muon.param_groups:
            group["lr"] = config.muon_lr * (lr / config.lr if config.lr else 0.0)
            group["momentum"] = muon_momentum(step, config)
        adamw = optimizer.adamw
    for group in adamw.param_groups:
        group["lr"] = lr
