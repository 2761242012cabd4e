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

A tower is re-embedded only when that saves memory. The first time a tower is met (and again
when which parameters train, train/eval mode or autocast change), its first chunk is embedded
with a graph, counting the bytes autograd saves: a tower with nothing to train (every
parameter frozen) gives constant embeddings and no backward; a tower whose graph is small, at
most :data:`KEEP_GRAPH_RATIO` embeddings' worth per row (a trainable projection on a locked
trunk: LiT's locked image tower, whose graph holds only the trunk's features), keeps every
chunk's graph and back-propagates through it; only the others are replayed. The gradients are
the same either way; a locked trunk just runs once per step instead of twice.

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
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.data.fields import chunks_of, groups_of
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["KEEP_GRAPH_RATIO", "RandomState", "grad_cache_step"]


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
    tower's rows are cut into chunks of ``chunk_size`` rows through their kind. A tower with
    nothing to train, or whose graph is small (a head on a locked trunk), is embedded once
    (see the module's notes).

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
    device = _device_of(recipe)
    # each tower's chunks in embedding order; multi-crop groups are chunked one by one
    towers = [
        _first_pass(
            recipe,
            tower,
            [c for group in groups_of(rows) for c in chunks_of(group, int(chunk_size))],
            device,
        )
        for tower, rows in recipe.tower_inputs(prepared).items()
    ]
    embeddings: dict[str, Tensor] = {}
    for t in towers:
        z = torch.cat([c.detach() for c in t.outputs])  # a normal tensor
        if z.dtype in (torch.bfloat16, torch.float16):
            z = z.float()  # cache the embedding gradients in float32
        embeddings[t.name] = z.requires_grad_() if t.mode != "constant" else z
    out = recipe.loss(embeddings, prepared)
    out.loss.backward()
    # kept graphs first (freeing them before any replay), then the replayed towers
    for t in sorted(towers, key=lambda t: t.mode == "replay"):
        if t.mode == "constant":
            continue
        grads = embeddings[t.name].grad.split([c.shape[0] for c in t.outputs])
        for i, (chunk, grad) in enumerate(zip(t.chunks, grads)):
            if t.mode == "kept":
                z = t.outputs[i]
            else:
                with t.states[i].replay():
                    z = recipe.embed(t.name, chunk)
            t.outputs[i] = z.detach()  # the graph goes with the backward
            z.backward(grad.to(z.dtype))
    return LossOutput(loss=out.loss.detach(), embeddings=out.embeddings, metrics=out.metrics)


#: a tower whose first chunk's graph saves at most this many embeddings' worth of tensors per
#: row keeps its graphs instead of embedding its rows again (a projection on a locked
#: EfficientNet-Lite0 saves the 1280-d features: 5 float32 128-d embeddings; a trainable
#: network saves its activations, hundreds to thousands)
KEEP_GRAPH_RATIO = 16


@dataclass
class _Tower:
    """One tower's first pass: its chunks, their embeddings and how it back-propagates.

    ``mode`` is ``"constant"`` (nothing in the tower trains: its embeddings are constants),
    ``"kept"`` (``outputs`` carry their graphs: back-propagated directly) or ``"replay"``
    (graph-free ``outputs``; each chunk is embedded again from its random state in ``states``).
    """

    name: str
    chunks: list[Any]
    outputs: list[Tensor] = field(default_factory=list)
    states: list[RandomState] = field(default_factory=list)
    mode: str = "replay"


#: each recipe's tower modes, by tower and everything the choice depends on (see _mode_key)
_MODES: weakref.WeakKeyDictionary[nn.Module, dict[tuple[Any, ...], str]] = (
    weakref.WeakKeyDictionary()
)


def _mode_key(recipe: Recipe, tower: str, device: torch.device) -> tuple[Any, ...]:
    """What a tower's mode depends on: which parameters train, train/eval mode, autocast."""
    autocast = torch.is_autocast_enabled(device.type)
    return (
        tower,
        recipe.training,
        autocast and torch.get_autocast_dtype(device.type),
        tuple(p.requires_grad for p in recipe.parameters()),
    )


def _first_pass(recipe: Recipe, tower: str, chunks: list[Any], device: torch.device) -> _Tower:
    """Embed one tower's chunks in its mode; the first time a tower is seen in a setting, its
    first chunk is embedded with a graph to choose the mode. Running statistics updated here
    are kept only when there is no replay."""
    key = _mode_key(recipe, tower, device)
    known = _MODES.setdefault(recipe, {})
    t = _Tower(tower, chunks, mode=known.get(key, "replay"))
    saved = _buffers(recipe)
    for i, chunk in enumerate(chunks):
        if t.mode == "replay":
            t.states.append(RandomState(device))
        if i == 0 and key not in known:
            graph = _SavedBytes(recipe, chunk)
            with graph:
                z = recipe.embed(tower, chunk)
            if not z.requires_grad:
                t.mode = "constant"
            elif graph.nbytes <= KEEP_GRAPH_RATIO * z.numel() * max(z.element_size(), 4):
                t.mode = "kept"
            else:
                z = z.detach()  # a replayed tower holds no graph between its two passes
            known[key] = t.mode
        elif t.mode == "kept":
            z = recipe.embed(tower, chunk)
        else:
            with torch.inference_mode():  # no graph, no version counters: the cheapest forward
                z = recipe.embed(tower, chunk)
        t.outputs.append(z)
    if t.mode == "replay":  # the replay updates running statistics, once
        for buf, value in saved:
            buf.copy_(value)
    return t


class _SavedBytes(torch.autograd.graph.saved_tensors_hooks):
    """Counts the bytes of the distinct storages that autograd saves for backward, leaving
    out the recipe's parameters and the rows themselves (they are held anyway)."""

    def __init__(self, recipe: nn.Module, rows: Any) -> None:
        held = list(recipe.parameters()) + ([rows] if isinstance(rows, Tensor) else [])
        self.seen = {_storage(p)[0] for p in held}
        self.nbytes = 0
        super().__init__(self._pack, _unpack)

    def _pack(self, tensor: Tensor) -> Tensor:
        key, nbytes = _storage(tensor)
        if key not in self.seen:
            self.seen.add(key)
            self.nbytes += nbytes
        return tensor


def _unpack(tensor: Tensor) -> Tensor:
    return tensor


def _storage(tensor: Tensor) -> tuple[int, int]:
    """(an id of the tensor's memory, its size in bytes)."""
    try:
        storage = tensor.untyped_storage()
        return storage.data_ptr(), storage.nbytes()
    except (RuntimeError, NotImplementedError):  # sparse, nested and other layouts
        return id(tensor), tensor.numel() * tensor.element_size()


def _device_of(recipe: Recipe) -> torch.device:
    p = next(recipe.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
