"""Gradient caching (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup") for any recipe that splits its step into prepare / embed / loss.

1. ``prepare`` the whole batch once (views, mixing: no gradients);
2. embed it in chunks of ``chunk_size`` rows without a graph, remembering each chunk's random
   state (dropout, stochastic depth);
3. compute the loss on all embeddings at once and back-propagate it to the embeddings (and to
   the loss's own parameters: a classifier, a learnable temperature);
4. embed each chunk again, with its random state replayed, and back-propagate the cached
   embedding gradients through it.

Peak activation memory is one chunk's, whatever the batch; the loss sees the full batch (every
negative, every label-defined positive: SupCon works, unlike the public GradCache code). With
layers whose rows are independent (LayerNorm, GroupNorm, no BatchNorm in train mode) the
parameter gradients are those of the plain full-batch step. BatchNorm in train mode normalises
per chunk, as in any sub-batched training; its running statistics are updated once per chunk
(the graph-free pass leaves them untouched).

Example:
    >>> import torch
    >>> from contrastkit.encoders import MLP
    >>> from contrastkit.recipes import SimCLR, SimCLRConfig
    >>> from contrastkit.train import grad_cache_step
    >>> recipe = SimCLR(MLP(64, (32,), 16, bn=False), SimCLRConfig(image_size=8, channels=1))
    >>> batch = {"images": torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)}
    >>> out = grad_cache_step(recipe, batch, chunk_size=16)  # gradients are now in .grad
    >>> recipe.encoder.net[0].weight.grad is not None
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.data.fields import chunks_of, groups_of
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["RandomState", "grad_cache_step"]


class RandomState:
    """The CPU (and CUDA, where used) generator state at one point, to replay a forward pass."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = device.index if device.type == "cuda" else None
        self.cuda_state = torch.cuda.get_rng_state(device) if self.cuda is not None else None

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block with this random state, then give the caller's state back."""
        devices = [self.cuda] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda_state is not None:
                torch.cuda.set_rng_state(self.cuda_state, self.cuda)
            yield


def _buffers(module: nn.Module) -> list[tuple[Tensor, Tensor]]:
    return [(b, b.detach().clone()) for b in module.buffers()]


def grad_cache_step(recipe: Recipe, batch: dict[str, Any], chunk_size: int) -> LossOutput:
    """One gradient-cached step: accumulates parameter gradients in ``.grad``, like
    ``recipe.step(batch).loss.backward()`` but holding one chunk's activations at a time.

    Works for any number of towers and any row kind (:mod:`contrastkit.data.fields`): each
    tower's rows are cut into chunks of ``chunk_size`` rows through their kind.

    Args:
        recipe: a recipe implementing ``prepare``, ``embed`` and ``loss``.
        batch: the trainer's batch (a dict of named fields).
        chunk_size: rows of one tower embedded at once, ≥ 1.

    Returns:
        The step's :class:`LossOutput`, its loss detached (the backward is already done).
    """
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}.")
    prepared = recipe.prepare(batch)
    # (tower, chunk) in embedding order; multi-crop groups are chunked one by one
    chunks = [
        (tower, chunk)
        for tower, rows in recipe.tower_inputs(prepared).items()
        for group in groups_of(rows)
        for chunk in chunks_of(group, int(chunk_size))
    ]
    device = _device_of(recipe)
    states, cached = [], []
    saved = _buffers(recipe)
    with torch.inference_mode():  # no graph, no version counters: the cheapest forward
        for tower, chunk in chunks:
            states.append(RandomState(device))
            cached.append(recipe.embed(tower, chunk))
    for buf, value in saved:  # the graph pass below updates running statistics, once
        buf.copy_(value)
    embeddings: dict[str, Tensor] = {}
    for tower in dict.fromkeys(t for t, _ in chunks):
        z = torch.cat([c for (t, _), c in zip(chunks, cached) if t == tower])  # a normal tensor
        if z.dtype in (torch.bfloat16, torch.float16):
            z = z.float()  # cache the embedding gradients in float32
        embeddings[tower] = z.requires_grad_()
    out = recipe.loss(embeddings, prepared)
    out.loss.backward()
    grads = {
        tower: iter(z.grad.split([c.shape[0] for (t, _), c in zip(chunks, cached) if t == tower]))
        for tower, z in embeddings.items()
    }
    for (tower, chunk), state in zip(chunks, states):
        with state.replay():
            z = recipe.embed(tower, chunk)
        z.backward(next(grads[tower]).to(z.dtype))
    return LossOutput(loss=out.loss.detach(), embeddings=out.embeddings, metrics=out.metrics)


def _device_of(recipe: Recipe) -> torch.device:
    p = next(recipe.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
