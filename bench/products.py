"""The least time a training step can take: its matrix products, each timed
alone at the step's shapes. The model's linear maps (the forward product and
the two of the backward pass), attention's fused kernel (forward and
backward), and Muon's Newton-Schulz products. Were everything else in a step
free (the norms, the activation, the rotary embedding, copies, the optimizers'
elementwise updates), a step would take this long: the model's FLOPs over it
bound the MFU a shape can reach, whatever compiling does to the rest."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.timing import fastest_seconds, wait_for
from minigpt.optim import Muon, MuonWithAdamW, orthogonalise_all
from minigpt.trainer import Trainer

REPEATS = 10  # the fastest of this many counts: a busy moment must not lengthen the least time


def products_seconds(trainer: Trainer) -> dict[str, float]:
    """Seconds a training step of trainer's shape spends in each kind of product, at the least."""
    config, model = trainer.config, trainer.model
    device, dtype = trainer.device, trainer.dtype
    tokens = config.batch_size * config.block_size * config.grad_accum
    maps = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    seconds = {shape: _linear_seconds(tokens, *shape, device, dtype) for shape in set(maps)}  # blocks share shapes
    parts = {"linear maps": sum(seconds[shape] for shape in maps)}
    c = model.config
    if c.attention:
        heads = (config.batch_size * config.grad_accum, c.n_heads, c.block_size, c.d_model // c.n_heads)
        parts["attention"] = c.n_layers * _attention_seconds(heads, device, dtype)
    if isinstance(trainer.optimizer, MuonWithAdamW):
        parts["Muon"] = _newton_schulz_seconds(trainer.optimizer.muon, device)
    return parts


def _linear_seconds(tokens: int, inputs: int, outputs: int, device: torch.device, dtype: torch.dtype) -> float:
    """x W^T forward; g W (the inputs' gradient) and g^T x (the weight's) backward."""
    x = torch.randn(tokens, inputs, device=device, dtype=dtype)
    w = torch.randn(outputs, inputs, device=device, dtype=dtype)
    g = torch.randn(tokens, outputs, device=device, dtype=dtype)

    def products() -> None:
        x @ w.T, g @ w, g.T @ x
        wait_for(device)

    products()
    return fastest_seconds(products, REPEATS)


def _attention_seconds(shape: tuple[int, int, int, int], device: torch.device, dtype: torch.dtype) -> float:
    q, k, v = (torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    gradient = torch.randn(shape, device=device, dtype=dtype)

    def attention() -> None:
        F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(gradient)
        wait_for(device)

    attention()
    return fastest_seconds(attention, REPEATS)


def _newton_schulz_seconds(muon: Muon, device: torch.device) -> float:
    """Muon's orthogonalisation of every matrix it moves, in its own number format."""
    pieces = [piece.detach() for group in muon.param_groups for p in group["params"]
              for piece in p.chunk(group["pieces"])]

    def orthogonalise() -> None:
        orthogonalise_all(pieces, muon.dtype)
        wait_for(device)

    orthogonalise()
    return fastest_seconds(orthogonalise, REPEATS)
