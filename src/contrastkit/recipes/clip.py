"""CLIP (Radford et al. 2021) and SigLIP (Zhai et al. 2023): an image tower and a text tower
trained together so that an image and its caption embed close together.

Two towers, ``"image"`` and ``"text"``, each an encoder and a linear projection into one shared
space. ``loss="clip"`` is the symmetric InfoNCE over the batch's image–caption similarities
with a learnable temperature, kept as a log-scale and clamped at 100 as CLIP does;
``loss="siglip"`` is the pairwise sigmoid loss with its learnable scale (initialised at 10) and
bias (at −10). Positives come by caption ids, so two images with the same caption are not
negatives of each other. Gradient caching (two towers) and torch.distributed (both losses
gather with gradients, ``gather="labels"``) apply unchanged.

Either tower can be locked (LiT, Zhai et al. 2022: lock the pre-trained image tower, tune the
text tower), which freezes its weights and keeps it in eval mode; ``unlock_image_blocks`` /
``unlock_text_blocks`` then tune the last blocks of a locked tower (partial unlocking).

A trained model is saved with :meth:`CLIP.export_towers` and used with
:class:`ImageTextModel` (``embed_images``, ``embed_texts``), without the recipe.

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.encoders.text import SmallTextEncoder
    >>> from contrastkit.recipes.clip import CLIP, CLIPConfig
    >>> texts = ["a red square", "a blue circle", "a red square", "a green star"]
    >>> text = SmallTextEncoder.from_texts(texts, dim=16, layers=1, heads=2)
    >>> recipe = CLIP(SmallCNN(in_channels=3, width=8, stages=2), text, CLIPConfig(image_size=16))
    >>> batch = {"images": torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
    ...          "texts": texts, "caption_ids": torch.tensor([0, 1, 0, 2])}
    >>> out = recipe.step(batch)
    >>> out.loss.ndim, sorted(out.metrics)
    (0, ['temperature'])
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.augment import ViewConfig, make_view, to_float_images
from contrastkit.augment.text import text_views
from contrastkit.losses import info_nce, sigmoid_pairwise
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["CLIP", "CLIPConfig", "ImageTextModel", "unlock_last_blocks"]


@dataclass
class CLIPConfig:
    """CLIP / SigLIP hyper-parameters (defaults sized for CPU).

    Attributes:
        image_size, channels: input geometry (views are made at ``image_size``).
        embed_dim: dimension of the shared image–text space (the towers' projections).
        text_projection: ``"linear"`` (learned) or ``"identity"``: the text tower's own space
            is the shared one (``embed_dim`` becomes its width) and only the image side learns
            to map into it, so a pre-trained text tower's geometry is kept whole.
        loss: ``"clip"`` (symmetric InfoNCE, softmax over the batch) or ``"siglip"``
            (pairwise sigmoid).
        temperature: the starting temperature (CLIP: 0.07; SigLIP: 0.1, a scale of 10).
        learn_temperature: learn it (as a log-scale, clamped at ``max_scale``) or keep it.
        max_scale: the largest logit scale 1/τ (CLIP clamps at 100).
        loss_precision: ``"fp32"`` or ``"bf16"``: the CLIP loss's similarity products in bf16
            with fp32 accumulation, log-sum-exp and gradient sums (the chunked path; about
            3× faster for large batches on CPUs with bf16 instructions; SigLIP stays fp32).
        bias: SigLIP's starting bias (−10: the many negatives start near zero loss); learned.
        lock_image, lock_text: freeze a tower (LiT: lock the pre-trained image tower).
        unlock_image_blocks, unlock_text_blocks: of a locked tower, tune its last this many
            blocks (and what follows them: the head convolution, the pooler) all the same.
        tower_lr: learning-rate multiplier of a pre-trained tower's weights (a tower with
            ``pretrained = True``, as the pipeline marks EfficientNet-Lite0 and MiniLM): they
            move slower than the new projections (the towers from scratch train at the base
            rate).
        cache_locked: with the image tower locked whole and no crop, compute each training
            image's features once (and once flipped) and reuse them every epoch; with the text
            tower locked whole, each caption's features likewise: the same result, a locked
            tower's cost paid in the first epoch only.
        crop_scale: area range of the images' random resized crops (light: captions name
            what is in the whole picture); ``(1, 1)``: no crop, the whole image resized.
        flip: horizontal-flip probability (0 when captions say left or right).
        text_views: the captions' views while training: ``none``, ``eda`` (synonyms, a word
            swap, word dropout) or ``crop`` (a random 60–100% span, word dropout); see
            :mod:`contrastkit.augment.text`.
    """

    image_size: int = 64
    channels: int = 3
    embed_dim: int = 128
    text_projection: str = "linear"
    loss: str = "clip"
    temperature: float = 0.07
    learn_temperature: bool = True
    max_scale: float = 100.0
    loss_precision: str = "fp32"
    bias: float = -10.0
    lock_image: bool = False
    lock_text: bool = False
    unlock_image_blocks: int = 0
    unlock_text_blocks: int = 0
    tower_lr: float = 0.1
    cache_locked: bool = True
    crop_scale: tuple[float, float] = (0.7, 1.0)
    flip: float = 0.5
    text_views: str = "none"


class CLIP(Recipe):
    """An image tower and a text tower with projections, trained with the CLIP or SigLIP loss.

    Args:
        encoder: the image encoder ((B, C, S, S) float images → (B, D_i)); exported as the
            recipe's ``encoder``.
        text_encoder: a text encoder with ``tokenize(list[str]) -> (B, L)`` ids and
            ``forward(ids) -> (B, D_t)`` (:mod:`contrastkit.encoders.text`).
        config: :class:`CLIPConfig`.

    Batches hold ``images`` (uint8 (B, C, H, W)), ``texts`` (B captions) and ``caption_ids``
    ((B,) int64, equal for equal captions; ``indices`` are used when absent).
    """

    name = "clip"
    modality = "image_text"
    towers: ClassVar[tuple[str, ...]] = ("image", "text")
    #: AdamW as CLIP and SigLIP train; lr at batch 256 and weight decay as open_clip's
    #: small-model recipes
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",
        "lr": 5e-4,
        "weight_decay": 0.2,
    }

    def __init__(
        self, encoder: nn.Module, text_encoder: nn.Module, config: CLIPConfig | None = None
    ) -> None:
        super().__init__()
        self.config = c = config or CLIPConfig()
        if c.loss not in ("clip", "siglip"):
            raise ValueError(f"loss must be 'clip' or 'siglip', got {c.loss!r}.")
        if c.loss_precision not in ("fp32", "bf16") or (
            c.loss == "siglip" and c.loss_precision != "fp32"
        ):
            raise ValueError(
                f"loss_precision must be 'fp32' or 'bf16' (bf16 for loss='clip' only), got "
                f"{c.loss_precision!r} with loss={c.loss!r}."
            )
        if not (0 < c.temperature and 1 / c.temperature <= c.max_scale):
            raise ValueError(
                f"temperature must be > 0 and 1/temperature at most max_scale={c.max_scale}, "
                f"got {c.temperature}."
            )
        self.encoder = encoder
        self.text_encoder = text_encoder
        if c.text_projection not in ("linear", "identity"):
            raise ValueError(
                f"text_projection must be 'linear' or 'identity', got {c.text_projection!r}."
            )
        dim = int(text_encoder.out_dim) if c.text_projection == "identity" else c.embed_dim
        self.image_proj = nn.Linear(int(encoder.out_dim), dim, bias=False)
        self.text_proj = nn.Linear(int(text_encoder.out_dim), dim, bias=False)
        if c.text_projection == "identity":  # a fixed identity: texts stay where they are
            with torch.no_grad():
                self.text_proj.weight.copy_(torch.eye(dim))
            self.text_proj.weight.requires_grad_(False)
        log_scale = torch.tensor(math.log(1 / c.temperature))
        self.log_scale = nn.Parameter(log_scale, requires_grad=c.learn_temperature)
        self.bias = nn.Parameter(torch.tensor(float(c.bias)), requires_grad=c.loss == "siglip")
        view = ViewConfig(
            size=c.image_size, scale=tuple(c.crop_scale), flip=c.flip, jitter=0.0, grayscale=0.0
        )
        self.view = make_view(view, c.channels)
        if c.text_views not in ("none", "eda", "crop"):
            raise ValueError(
                f"text_views must be 'none', 'eda' or 'crop' (views of one caption), got "
                f"{c.text_views!r}."
            )
        self.text_views = text_views(c.text_views) if c.text_views != "none" else None
        for tower, locked, unlocked in (
            (self.encoder, c.lock_image, c.unlock_image_blocks),
            (self.text_encoder, c.lock_text, c.unlock_text_blocks),
        ):
            if locked:
                tower.requires_grad_(False)
                unlock_last_blocks(tower, unlocked)
            if getattr(tower, "pretrained", False) and c.tower_lr != 1.0:
                for p in tower.parameters():
                    p.lr_scale = c.tower_lr  # read by contrastkit.train.optim.param_groups
        #: locked image features by (training row index × 2 + flipped), see ``cache_locked``
        self._features: dict[int, Tensor] = {}
        #: locked text features by training row index
        self._text_features: dict[int, Tensor] = {}
        self.train()

    def train(self, mode: bool = True) -> CLIP:
        """As ``nn.Module.train``, but a locked tower stays in eval mode (frozen BN/dropout),
        except the blocks unlocked in it."""
        super().train(mode)
        c = self.config
        for tower, locked, unlocked in (
            (self.encoder, c.lock_image, c.unlock_image_blocks),
            (self.text_encoder, c.lock_text, c.unlock_text_blocks),
        ):
            if locked:
                tower.eval()
                for block in _last_blocks(tower, unlocked):
                    block.train(mode)
        return self

    @property
    def temperature(self) -> Tensor:
        """τ = 1 / min(exp(log_scale), max_scale)."""
        return 1 / self.log_scale.clamp(max=math.log(self.config.max_scale)).exp()

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        images = batch["images"]
        c = self.config
        with torch.no_grad():
            if self.training and tuple(c.crop_scale) != (1.0, 1.0):
                x = self.view(to_float_images(images))
            else:  # the whole image, resized (and flipped while training)
                flips = torch.zeros(len(images), dtype=torch.bool)
                if self.training and c.flip > 0:
                    flips = torch.rand(len(images)) < c.flip
                if self._caches() and batch.get("indices") is not None:
                    x = self._locked_features(images, batch["indices"], flips)
                else:
                    x = self._flipped(self._resize(images), flips)
            x = x.to(next(self.encoder.parameters()).dtype)  # float64 in tests, else float32
        texts = list(batch["texts"])
        if self.training and self.text_views is not None:
            texts = self.text_views(texts)
        if self._caches_text() and batch.get("indices") is not None:
            ids = self._locked_text(texts, batch["indices"]).to(images.device)
        else:
            ids = self.text_encoder.tokenize(texts).to(images.device)
        return {**batch, "inputs": {"image": x, "text": ids}}

    def _caches_text(self) -> bool:
        c = self.config
        whole = c.lock_text and c.unlock_text_blocks == 0
        return c.cache_locked and whole and c.text_views == "none"

    def _locked_text(self, texts: list[str], indices: Tensor) -> Tensor:
        """(B, D_t) float features of the locked text tower, cached by training row."""

        def embed(rows: list[int]) -> Tensor:
            device = next(self.text_encoder.parameters()).device
            return self.text_encoder(
                self.text_encoder.tokenize([texts[i] for i in rows]).to(device)
            )

        return _cached(self._text_features, indices.cpu().long().tolist(), embed)

    @staticmethod
    def _flipped(x: Tensor, flips: Tensor) -> Tensor:
        return torch.where(flips.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)

    def _caches(self) -> bool:
        c = self.config
        whole = c.lock_image and c.unlock_image_blocks == 0
        return c.cache_locked and whole and tuple(c.crop_scale) == (1.0, 1.0)

    def _locked_features(self, images: Tensor, indices: Tensor, flips: Tensor) -> Tensor:
        """(B, D_i) features of the locked image tower for the resized rows, ``flips`` of
        them flipped: from the cache where they are, computed (and kept) otherwise."""

        def embed(rows: list[int]) -> Tensor:
            x = self._flipped(self._resize(images[rows]), flips[rows])
            return self.encoder(x.to(next(self.encoder.parameters()).dtype))

        keys = (indices.cpu().long() * 2 + flips.long()).tolist()
        return _cached(self._features, keys, embed).to(images.device)

    def _resize(self, images: Tensor) -> Tensor:
        x = to_float_images(images)
        size = self.config.image_size
        if x.shape[-2:] != (size, size):
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear")
        return x

    def embed(self, tower: str, rows: Tensor) -> Tensor:
        if tower == "image":
            if rows.dim() == 2:  # the locked tower's cached features
                return self.image_proj(rows.to(self.image_proj.weight.dtype))
            return self.image_proj(self.encoder(rows))
        if rows.is_floating_point():  # the locked text tower's cached features
            return self.text_proj(rows.to(self.text_proj.weight.dtype))
        out = self.text_encoder(rows)  # text encoders pool in float32
        return self.text_proj(out.to(self.text_proj.weight.dtype))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        image, text = by_tower["image"], by_tower["text"]
        ids = prepared.get("caption_ids")
        if ids is None:
            ids = prepared["indices"]
        tau = self.temperature
        if self.config.loss == "clip":
            loss = info_nce(
                image,
                text,
                query_ids=ids,
                key_ids=ids,
                temperature=tau,
                symmetric=True,
                gather="labels",
                precision=self.config.loss_precision,
            )
        else:
            loss = sigmoid_pairwise(
                image,
                text,
                query_ids=ids,
                key_ids=ids,
                temperature=tau,
                bias=self.bias,
                gather="labels",
            )
        metrics = {"temperature": float(tau.detach())}
        if self.config.loss == "siglip":
            metrics["bias"] = float(self.bias.detach())
        return LossOutput(loss=loss, embeddings=image.detach(), metrics=metrics)


def _cached(cache: dict[int, Tensor], keys: list[int], embed: Any) -> Tensor:
    """(B, D) float32 CPU rows of ``cache`` for ``keys``; the rows missing are computed by
    ``embed(positions of the missing keys)`` without gradient, and kept."""
    todo = [i for i, k in enumerate(keys) if k not in cache]
    if todo:
        with torch.no_grad():
            feats = embed(todo).float().cpu()
        for i, f in zip(todo, feats):
            cache[keys[i]] = f
    return torch.stack([cache[k] for k in keys])


# ---------------------------------------------------------------------------------------------
# partial unlocking


def _block_list(tower: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The tower's longest ``nn.ModuleList`` (EfficientNet's ``_blocks``, a Transformer's
    ``layer``, a ResNet's stages): (its qualified name, the list)."""
    lists = [(n, m) for n, m in tower.named_modules() if isinstance(m, nn.ModuleList)]
    return max(lists, key=lambda nm: len(nm[1])) if lists else None


def _last_blocks(tower: nn.Module, count: int) -> list[nn.Module]:
    """The last ``count`` blocks of the tower's block list and every module registered after
    that list that holds parameters (head convolution and norm, pooler); [] for 0."""
    if count <= 0:
        return []
    found = _block_list(tower)
    if found is None:
        raise ValueError(
            f"{type(tower).__name__} has no list of blocks to unlock; lock or tune the whole "
            "tower (unlock_*_blocks=0)."
        )
    name, blocks = found
    out = list(blocks[-count:])
    passed = False  # modules registered after the list (the head): unlocked with it
    for n, m in tower.named_modules():
        if n == name:
            passed = True
        elif passed and not n.startswith(name + ".") and any(True for _ in m.parameters(False)):
            out.append(m)
    return out


def unlock_last_blocks(tower: nn.Module, count: int) -> list[nn.Module]:
    """Let the last ``count`` blocks of a locked tower train again (partial unlocking: LiT's
    "lock the image tower but its last blocks"); returns the modules unlocked.

    The blocks are the tower's longest ``nn.ModuleList`` (EfficientNet-Lite0: 16 MBConv
    blocks, then its head convolution and norm; MiniLM: 6 Transformer layers, then its
    pooler); what comes after that list and holds parameters is unlocked with them.

    Example:
        >>> from contrastkit.encoders.text import SmallTextEncoder
        >>> enc = SmallTextEncoder.from_texts(["a b", "c d"], dim=8, layers=2, heads=2)
        >>> _ = enc.requires_grad_(False)
        >>> len(unlock_last_blocks(enc, 1)) >= 1
        True
    """
    blocks = _last_blocks(tower, count)
    for block in blocks:
        block.requires_grad_(True)
    return blocks


# ---------------------------------------------------------------------------------------------
# the exported model


#: files of an exported image–text model (beside the ``image/`` and ``text/`` encoder folders)
MODEL_FILES = ("clip.json", "clip.safetensors")


def export_towers(recipe: CLIP, out_dir: str | os.PathLike, image_name: str) -> Path:
    """Write the trained model to ``out_dir``: ``image/`` and ``text/`` (each tower as
    :func:`~contrastkit.train.export_encoder` writes it), ``clip.safetensors`` (the two
    projections, the logit scale and bias) and ``clip.json`` (geometry, loss, checksum).
    :meth:`ImageTextModel.load` reads it back."""
    from contrastkit.train.checkpoint import atomic_write_bytes, file_sha256, save_state
    from contrastkit.train.export import export_encoder

    out = Path(out_dir)
    export_encoder(recipe.encoder, out / "image", image_name)
    text_name = "hf_text" if hasattr(recipe.text_encoder, "export_assets") else "small_text"
    export_encoder(recipe.text_encoder, out / "text", text_name)
    heads = {
        "image_proj": recipe.image_proj.weight.detach().float(),
        "text_proj": recipe.text_proj.weight.detach().float(),
        "log_scale": recipe.log_scale.detach().float(),
        "bias": recipe.bias.detach().float(),
    }
    save_state(out / MODEL_FILES[1], {"state_dict": heads})
    c = recipe.config
    meta = {
        "model": "clip",
        "loss": c.loss,
        "image_size": c.image_size,
        "channels": c.channels,
        "embed_dim": int(recipe.image_proj.weight.shape[0]),
        "temperature": float(recipe.temperature.detach()),
        "sha256": file_sha256(out / MODEL_FILES[1]),
    }
    atomic_write_bytes(out / MODEL_FILES[0], json.dumps(meta, indent=2).encode())
    return out


class ImageTextModel(nn.Module):
    """A trained image–text model: images and texts into one space, for retrieval, zero-shot
    classification and search.

    Args:
        image: the image tower ((B, C, S, S) floats in [0, 1] → (B, D_i)).
        text: the text tower (``tokenize`` + ``forward`` → (B, D_t)).
        image_proj, text_proj: (E, D_i) and (E, D_t) projection weights.
        image_size: the side images are resized to.
        temperature: the trained temperature (kept for scores; retrieval ranks by cosine).

    Example:
        >>> model = ImageTextModel.load("runs/clip")  # doctest: +SKIP
        >>> model.embed_texts(["a red car"]).shape  # doctest: +SKIP
        torch.Size([1, 128])
    """

    def __init__(
        self,
        image: nn.Module,
        text: nn.Module,
        image_proj: Tensor,
        text_proj: Tensor,
        image_size: int,
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        self.image = image.eval()
        self.text = text.eval()
        self.image_proj = nn.Linear(image_proj.shape[1], image_proj.shape[0], bias=False)
        self.text_proj = nn.Linear(text_proj.shape[1], text_proj.shape[0], bias=False)
        with torch.no_grad():
            self.image_proj.weight.copy_(image_proj)
            self.text_proj.weight.copy_(text_proj)
        self.image_size = int(image_size)
        self.temperature = float(temperature)
        self.out_dim = int(image_proj.shape[0])

    @classmethod
    def from_recipe(cls, recipe: CLIP) -> ImageTextModel:
        """The model of a (trained) recipe, sharing its modules."""
        return cls(
            recipe.encoder,
            recipe.text_encoder,
            recipe.image_proj.weight.detach(),
            recipe.text_proj.weight.detach(),
            recipe.config.image_size,
            float(recipe.temperature.detach()),
        )

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "cpu") -> ImageTextModel:
        """Load what :func:`export_towers` wrote (checksums checked); raises
        FileNotFoundError naming the fix when ``folder`` holds no image–text model."""
        from contrastkit.train.checkpoint import damaged, file_sha256, load_state
        from contrastkit.train.export import load_encoder

        out = Path(folder)
        if not (out / MODEL_FILES[0]).is_file():
            raise FileNotFoundError(
                f"{out} holds no image–text model (no {MODEL_FILES[0]}); give the --out folder "
                "of a `contrastkit train --recipe clip` run."
            )
        try:
            meta = json.loads((out / MODEL_FILES[0]).read_text())
        except ValueError as err:
            raise damaged(out / MODEL_FILES[0], f"{type(err).__name__}: {err}") from None
        if meta.get("sha256") and file_sha256(out / MODEL_FILES[1]) != meta["sha256"]:
            raise damaged(
                out / MODEL_FILES[1], f"its sha256 differs from the one in {MODEL_FILES[0]}"
            )
        heads = load_state(out / MODEL_FILES[1])["state_dict"]
        model = cls(
            load_encoder(out / "image", device),
            load_encoder(out / "text", device),
            heads["image_proj"],
            heads["text_proj"],
            meta["image_size"],
            meta.get("temperature", 0.07),
        )
        return model.to(device).eval()

    @property
    def device(self) -> torch.device:
        return self.image_proj.weight.device

    def embed_images(self, images: Tensor, batch_size: int = 256, bf16: bool = False) -> Tensor:
        """uint8 (N, C, H, W) images → L2-normalised float32 (N, E) on the CPU."""
        out = []
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(images), batch_size):
                x = to_float_images(images[start : start + batch_size]).to(self.device)
                if x.shape[-2:] != (self.image_size, self.image_size):
                    x = torch.nn.functional.interpolate(
                        x, size=(self.image_size, self.image_size), mode="bilinear"
                    )
                z = self.image_proj(self.image(x).float()).float()
                out.append(torch.nn.functional.normalize(z, dim=1).cpu())
        return torch.cat(out) if out else torch.empty(0, self.out_dim)

    def embed_texts(self, texts: list[str], batch_size: int = 256, bf16: bool = False) -> Tensor:
        """N texts → L2-normalised float32 (N, E) on the CPU (sorted by length in batches)."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            feats = self.text.encode(list(texts), batch_size=batch_size, device=self.device)
        with torch.no_grad():
            z = self.text_proj(feats.to(self.device).float())
        return torch.nn.functional.normalize(z, dim=1).cpu()
