"""Few-shot fine-tuning: adapt a copy of an encoder to a handful of labelled images with the
supervised contrastive loss, before embedding the support and query rows.

Example:
    >>> import torch
    >>> from contrastkit.augment import views_for
    >>> from contrastkit.encoders import SmallCNN
    >>> encoder = SmallCNN(in_channels=1, width=4, stages=2)
    >>> images = torch.randint(0, 256, (6, 1, 12, 12), dtype=torch.uint8)
    >>> views = views_for("supcon", image_size=12, channels=1, flip=0.0)
    >>> tuned = supcon_finetune(encoder, images, torch.tensor([0, 0, 1, 1, 2, 2]), views, steps=2)
    >>> tuned is encoder, tuned.training
    (False, False)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from contrastkit.evaluate.protocols.base import check_labels
from contrastkit.losses import sup_con

__all__ = ["supcon_finetune"]


def supcon_finetune(
    encoder: nn.Module,
    images: Tensor,
    labels: Tensor,
    views: Callable[[Tensor], Sequence[Tensor]],
    steps: int = 30,
    lr: float = 1e-3,
    temperature: float = 0.1,
    batch_size: int | None = None,
    seed: int = 0,
    *,
    history: list[float] | None = None,
) -> nn.Module:
    """Fine-tune a deep copy of ``encoder`` on labelled support images with the supervised
    contrastive loss (:func:`contrastkit.losses.sup_con`, Khosla et al. 2020) and return it in
    eval mode; ``encoder`` itself is never modified.

    Each step draws a batch of images (all of them when ``batch_size`` is None or ≥ the
    images; else ``batch_size`` without replacement), makes two views of each with ``views``,
    embeds both with the copy and takes one Adam step on ``sup_con`` of the encoder's output
    (no projection head: the embeddings used afterwards are the ones trained), every view of a
    same-label image being a positive. All randomness (batches, views, dropout) comes from
    ``torch.manual_seed(seed)`` inside a forked RNG, so the same seed gives the same weights and
    the caller's random state is untouched. Batch-norm layers train in the copy (their running
    statistics adapt to the support images).

    Args:
        encoder: maps a (B, C, H, W) float batch to (B, D) embeddings.
        images: (N, C, H, W) uint8 or float support images. labels: (N,) integer classes,
            at least two distinct.
        views: called as ``views(images)``, returns a sequence of at least two augmented
            float batches of the images, e.g. :func:`contrastkit.augment.views_for`
            ``("supcon", image_size, channels)``.
        steps: optimiser steps. lr: Adam's learning rate. temperature: sup_con's τ.
        batch_size: images per step (None: all). seed: the randomness.
        history: if given, the loss of every step is appended to it.

    Returns:
        The fine-tuned copy, in eval mode, on the encoder's device.
    """
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a (N, C, H, W) tensor of support images, got {shape}.")
    labels = check_labels(labels, images.shape[0], "labels", "images", allow_negative=True)
    if torch.unique(labels).numel() < 2:
        raise ValueError(
            "labels hold a single class; the supervised contrastive loss needs at least two "
            "classes (negatives). Give support images of two or more classes."
        )
    if int(steps) < 0 or float(lr) <= 0 or float(temperature) <= 0:
        raise ValueError(
            f"steps must be ≥ 0 and lr, temperature > 0; got steps={steps}, lr={lr}, "
            f"temperature={temperature}."
        )
    n = images.shape[0]
    if batch_size is not None and int(batch_size) < 2:
        raise ValueError(f"batch_size must be ≥ 2 (or None for all images), got {batch_size}.")
    per_step = n if batch_size is None else min(int(batch_size), n)

    model = copy.deepcopy(encoder)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the encoder has no trainable parameters; nothing to fine-tune.")
    device = params[0].device
    images, labels = images.to(device), labels.long().to(device)
    opt = torch.optim.Adam(params, lr=float(lr))
    model.train()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        torch.manual_seed(int(seed))
        for _ in range(int(steps)):
            if per_step < n:
                rows = torch.randperm(n, device="cpu")[:per_step].to(device)
                x, y = images[rows], labels[rows]
            else:
                x, y = images, labels
            made = views(x)
            if len(made) < 2:
                raise ValueError(
                    f"views returned {len(made)} batch(es); supcon_finetune needs two views "
                    f"per image (e.g. views_for('supcon', image_size, channels))."
                )
            z = model(torch.cat([made[0], made[1]]).to(device))
            loss = sup_con(z, y.repeat(2), temperature=float(temperature))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if history is not None:
                history.append(float(loss.detach()))
    return model.eval()
