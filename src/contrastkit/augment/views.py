"""Batched view generation: whole batches are augmented as tensors (kornia), on any device.

A *view pipeline* maps a batch of images (B, C, H, W) — uint8 in [0, 255] or float in [0, 1] —
to one augmented float batch; :class:`Views` applies several pipelines to make the views a
recipe needs (two for SimCLR/SupCon, an asymmetric pair for BYOL, 2 global + k local crops for
multi-crop). Every random parameter is drawn per sample, so one call augments the whole batch.

Example:
    >>> import torch
    >>> from contrastkit.augment import views_for
    >>> views = views_for("simclr", image_size=28, channels=1)
    >>> v1, v2 = views(torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8), seed=0)
    >>> v1.shape, v1.dtype
    (torch.Size([16, 1, 28, 28]), torch.float32)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import kornia.augmentation as K
import torch
from torch import Tensor, nn

__all__ = ["PRESETS", "ViewConfig", "Views", "make_view", "to_float_images", "views_for"]


def to_float_images(x: Tensor) -> Tensor:
    """uint8 [0, 255] → float32 [0, 1]; float input is returned as float32 unchanged."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not torch.is_floating_point(x):
        raise TypeError(f"images must be uint8 or float, got {x.dtype}.")
    return x.float()


@dataclass(frozen=True)
class ViewConfig:
    """Parameters of one view pipeline (probabilities are per sample).

    Attributes:
        size: output side length (square crops).
        scale: area range of the random resized crop.
        ratio: aspect-ratio range of the crop.
        flip: probability of a horizontal flip (set 0 for digits and text).
        rotation: maximum rotation in degrees (0 disables).
        jitter: probability of colour jitter; ``brightness``, ``contrast``, ``saturation``,
            ``hue`` are its strengths (saturation and hue apply to RGB only).
        grayscale: probability of converting to grayscale (RGB only).
        blur: probability of a Gaussian blur (kernel ≈ 10% of the size, σ ∈ [0.1, 2]).
        solarize: probability of solarization (threshold 0.5).
        mean, std: per-channel normalisation applied last (None: no normalisation).
    """

    size: int
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    rotation: float = 0.0
    jitter: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale: float = 0.2
    blur: float = 0.0
    solarize: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def make_view(cfg: ViewConfig, channels: int) -> nn.Sequential:
    """Build one kornia pipeline for ``channels``-channel images from a :class:`ViewConfig`."""
    if channels not in (1, 3):
        raise ValueError(f"views support 1- or 3-channel images, got {channels} channels.")
    ops: list[nn.Module] = [
        K.RandomResizedCrop((cfg.size, cfg.size), scale=cfg.scale, ratio=cfg.ratio)
    ]
    if cfg.flip > 0:
        ops.append(K.RandomHorizontalFlip(p=cfg.flip))
    if cfg.rotation > 0:
        ops.append(K.RandomRotation(cfg.rotation, p=1.0))
    if cfg.jitter > 0:
        sat, hue = (cfg.saturation, cfg.hue) if channels == 3 else (0.0, 0.0)
        ops.append(K.ColorJitter(cfg.brightness, cfg.contrast, sat, hue, p=cfg.jitter))
    if cfg.grayscale > 0 and channels == 3:
        ops.append(K.RandomGrayscale(p=cfg.grayscale))
    if cfg.blur > 0:
        k = max(3, int(0.1 * cfg.size) // 2 * 2 + 1)
        ops.append(K.RandomGaussianBlur((k, k), (0.1, 2.0), p=cfg.blur))
    if cfg.solarize > 0:
        ops.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=cfg.solarize))
    if cfg.mean is not None and cfg.std is not None:
        ops.append(K.Normalize(torch.tensor(cfg.mean), torch.tensor(cfg.std)))
    return nn.Sequential(*ops)


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device):
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class Views(nn.Module):
    """Several view pipelines applied to one batch: ``views(images, seed=None) -> list``.

    Args:
        pipelines: one module per output view (global views first, then local crops).

    ``seed`` makes a call reproducible without touching the caller's random state.
    """

    def __init__(self, pipelines: Sequence[nn.Module]) -> None:
        super().__init__()
        if not pipelines:
            raise ValueError("Views needs at least one pipeline.")
        self.pipelines = nn.ModuleList(pipelines)

    def forward(self, images: Tensor, seed: int | None = None) -> list[Tensor]:
        if images.dim() != 4:
            raise ValueError(
                f"images must be a (B, C, H, W) batch, got shape {tuple(images.shape)}."
            )
        x = to_float_images(images)
        with _seeded(seed, x.device), torch.no_grad():
            return [p(x) for p in self.pipelines]


def _simclr(size: int) -> list[ViewConfig]:
    base = ViewConfig(size=size, scale=(0.2, 1.0), blur=0.5 if size >= 64 else 0.0)
    return [base, base]


def _byol(size: int) -> list[ViewConfig]:
    # Grill et al. 2020, Table 6: blur 1.0 / 0.1, solarize 0 / 0.2 on the two views.
    common = ViewConfig(size=size, scale=(0.08, 1.0), saturation=0.2, hue=0.1)
    return [replace(common, blur=1.0, solarize=0.0), replace(common, blur=0.1, solarize=0.2)]


def _multicrop(size: int, n_local: int = 4) -> list[ViewConfig]:
    glob = ViewConfig(size=size, scale=(0.4, 1.0))
    local = ViewConfig(size=max(8, (size * 3) // 7), scale=(0.05, 0.4))
    return [glob, glob] + [local] * n_local


PRESETS = {
    "simclr": _simclr,
    "supcon": _simclr,
    "byol": _byol,
    "multicrop": _multicrop,
}


def views_for(
    recipe: str,
    image_size: int,
    channels: int,
    *,
    flip: float | None = None,
    scale: tuple[float, float] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **kwargs,
) -> Views:
    """The view preset of a recipe for ``image_size`` px images with 1 or 3 channels.

    Args:
        recipe: ``"simclr"``, ``"supcon"``, ``"byol"`` (asymmetric) or ``"multicrop"``
            (2 global + ``n_local`` local crops).
        image_size: side of the global views.
        channels: 1 (grayscale; colour ops reduce to brightness/contrast) or 3.
        flip: override the flip probability (0 for digits).
        scale: override the crop-area range of the global views (e.g. (0.4, 1) for small,
            centred objects whose silhouette is the class).
        mean, std: per-channel normalisation for every view.
        kwargs: preset options (``n_local`` for multicrop).
    """
    if recipe not in PRESETS:
        import difflib

        close = difflib.get_close_matches(recipe, list(PRESETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"no view preset {recipe!r}; presets: {sorted(PRESETS)}.{hint}")
    configs = PRESETS[recipe](image_size, **kwargs)
    over = {}
    if flip is not None:
        over["flip"] = flip
    n_global = 2
    if mean is not None and std is not None:
        over["mean"], over["std"] = tuple(mean), tuple(std)
    out = []
    for i, c in enumerate(configs):
        extra = {"scale": tuple(scale)} if scale is not None and i < n_global else {}
        out.append(make_view(replace(c, **over, **extra), channels))
    return Views(out)
