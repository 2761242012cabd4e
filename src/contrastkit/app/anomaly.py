"""One-class anomaly detection as a product: fit a detector on normal images only, score new
images, flag them at a threshold set for a false-positive rate on held-out normal images.

The detector (:class:`Detector`):

- training: the ``csi`` recipe (SimCLR with rotations by 0/90/180/270° as extra negatives and
  an auxiliary prediction of the rotation; Tack et al. 2020) on the normal images only;
- a held-out part of the normal images (``holdout``, seeded) is never trained on: its scores
  set the threshold at the target false-positive rate (``fpr``). No anomaly is ever looked at;
- scores (higher = more anomalous), :data:`SCORES`: ``"csi"`` (CSI's cosine to the nearest
  training image × the feature norm, summed over the four rotations with balancing weights,
  plus the rotation classifier's confidence), ``"knn"`` (distance to the nearest training
  embedding) and ``"mahalanobis"`` (shrunk-covariance Mahalanobis distance of the
  embedding);
- saved as ``detector.json`` + ``detector.safetensors`` (network, bank and threshold) beside
  the usual ``encoder.json`` + ``encoder.safetensors`` (the encoder alone, for
  ``contrastkit embed`` and ``contrastkit fewshot``), all written atomically; nothing is
  pickled.

Example:
    >>> import torch
    >>> from contrastkit.app.anomaly import AnomalyConfig, fit_detector
    >>> from contrastkit.data.datasets import ImageSet
    >>> normal = ImageSet(torch.randint(0, 256, (40, 1, 16, 16), dtype=torch.uint8), None)
    >>> cfg = AnomalyConfig(epochs=1, batch_size=16, width=4, progress=False)
    >>> det = fit_detector(normal, cfg, out_dir=None)  # doctest: +SKIP
    >>> det.score(normal.images[:3]).shape  # doctest: +SKIP
    torch.Size([3])
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DEFAULT_IMAGE_SCORE",
    "DETECTOR_FORMAT",
    "SCORES",
    "AnomalyConfig",
    "Detector",
    "fit_detector",
    "holdout_split",
    "load_detector",
    "read_detector_meta",
    "score_folder",
]

#: The anomaly scores a detector can use.
SCORES = ("csi", "knn", "mahalanobis")
#: ``contrastkit anomaly fit``'s score for images: chosen on one-class MNIST (the development
#: set; benchmarks/anomaly_oneclass.py), where it had the best mean AUROC of the five scores
DEFAULT_IMAGE_SCORE = "mahalanobis"


@dataclass
class AnomalyConfig:
    """Options of :func:`fit_detector` (the ``contrastkit anomaly fit`` flags).

    Attributes:
        score: the anomaly score, one of :data:`SCORES`.
        encoder: ``"small_cnn"`` or ``"resnet18"`` (small-image stem); ``width``: the first
            stage's channels of the small CNN, or the ResNet's width multiplier.
        epochs: training epochs (the cap when ``minutes`` is set).
        minutes: a training budget; the schedule is fitted to it (None: ``epochs`` decide).
        batch_size: normal images per step (each gives 4 rotations × 2 views).
        lr: Adam's learning rate (weight decay 1e-6, cosine schedule, one warm-up epoch).
        temperature: the contrastive loss's τ. shifts: rotations (4: 0/90/180/270°).
        flip: horizontal-flip probability of the views. crop_scale: their crop area range.
        holdout: the fraction of the normal images held out for the threshold (never trained
            on). fpr: the target false-positive rate of the flag on normal images.
        precision: ``"auto"`` (bf16 where the CPU supports it), ``"bf16"`` or ``"fp32"``.
        seed: training, views and the held-out draw. progress: a progress bar.
        image_size: resize the images to this square size (None: their own size).
    """

    score: str = "csi"
    encoder: str = "small_cnn"
    width: float = 32
    epochs: int = 30
    minutes: float | None = None
    batch_size: int = 64
    lr: float = 1e-3
    temperature: float = 0.5
    shifts: int = 4
    flip: float = 0.5
    crop_scale: tuple[float, float] = (0.3, 1.0)
    holdout: float = 0.1
    fpr: float = 0.05
    precision: str = "auto"
    seed: int = 0
    progress: bool = True
    image_size: int | None = None

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; use one of {SCORES}.")
        if self.encoder not in ("small_cnn", "resnet18"):
            raise ValueError(
                f"unknown encoder {self.encoder!r} for anomaly detection; use small_cnn or "
                f"resnet18."
            )
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(
                f"holdout must be in (0, 1): the part of the normal images kept out of training "
                f"to set the threshold; got {self.holdout}."
            )
        if not 0.0 < self.fpr < 1.0:
            raise ValueError(f"fpr must be in (0, 1), e.g. 0.05; got {self.fpr}.")
        self.crop_scale = (float(self.crop_scale[0]), float(self.crop_scale[1]))


def _build_encoder(cfg: AnomalyConfig, channels: int) -> torch.nn.Module:
    from contrastkit.encoders import build_encoder

    if cfg.encoder == "small_cnn":
        return build_encoder("small_cnn", in_channels=channels, width=int(cfg.width), stages=3)
    return build_encoder("resnet18", in_channels=channels, small_input=True, width=cfg.width)


def _build_recipe(cfg: AnomalyConfig, encoder: torch.nn.Module, size: int, channels: int):
    from contrastkit.recipes.csi import CSI, CSIConfig

    return CSI(
        encoder,
        CSIConfig(
            image_size=size,
            channels=channels,
            temperature=cfg.temperature,
            shifts=cfg.shifts,
            flip=cfg.flip,
            crop_scale=cfg.crop_scale,
        ),
    )


@dataclass
class Detector:
    """A fitted one-class detector: the CSI network, the scorer fitted on the training normal
    images' features, and the threshold set on the held-out normal images.

    Attributes:
        recipe: the trained CSI recipe (encoder, projection head, rotation head).
        scorer: the :class:`contrastkit.evaluate.anomaly.AnomalyScorer` fitted on the bank.
        threshold: images scoring above it are flagged.
        config: the :class:`AnomalyConfig` it was fitted with.
        image_shape: (C, H, W) of the images it takes (others are resized to it).
        info: counts, the held-out false-positive rate, timings.
        bank: :meth:`features` of the images it was trained on, as :func:`fit_detector`
            computed them for the scorer (to score them otherwise without recomputing); not
            saved (None after :func:`load_detector`).
    """

    recipe: Any
    scorer: Any
    threshold: float
    config: AnomalyConfig
    image_shape: tuple[int, int, int]
    info: dict[str, Any] = field(default_factory=dict)
    bank: dict[str, Tensor] | None = field(default=None, repr=False)

    @torch.no_grad()
    def features(self, images: Tensor, batch_size: int = 256) -> dict[str, Tensor]:
        """What the scorer needs of uint8 images (N, C, H, W): ``"z"`` (K, N, D) projections
        of the K rotations and ``"logits"`` (K, N, K) for the CSI score, ``"embedding"``
        (N, E) encoder features for kNN and Mahalanobis."""
        from contrastkit.recipes.csi import rotate

        self.recipe.eval()
        k = self.config.shifts if self.config.score == "csi" else 1
        zs: list[list[Tensor]] = [[] for _ in range(k)]
        logits: list[list[Tensor]] = [[] for _ in range(k)]
        emb: list[Tensor] = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].float().div_(255.0)
            for r in range(k):
                f = self.recipe.encoder(rotate(x, r)).float()
                if r == 0:
                    emb.append(f)
                if self.config.score == "csi":
                    zs[r].append(self.recipe.head(f).float())
                    logits[r].append(self.recipe.shift_head(f).float())
        out = {"embedding": torch.cat(emb) if emb else torch.zeros(0)}
        if self.config.score == "csi":
            out["z"] = torch.stack([torch.cat(z) for z in zs])
            out["logits"] = torch.stack([torch.cat(lg) for lg in logits])
        return out

    def score(self, images: Tensor) -> Tensor:
        """Anomaly scores (N,) float32 of uint8 images (N, C, H, W); higher = more anomalous."""
        images = _fit_shape(images, self.image_shape)
        return self.score_features(self.features(images))

    def score_features(self, feats: dict[str, Tensor]) -> Tensor:
        """Anomaly scores (N,) of the output of :meth:`features` (to score features computed
        once for several scores)."""
        return self.scorer.score(**_scorer_inputs(self.scorer, feats))

    def flag(self, scores: Tensor) -> Tensor:
        """(N,) bool: the scores above the threshold."""
        return scores > self.threshold

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write detector.json + detector.safetensors and encoder.json + encoder.safetensors."""
        from contrastkit._io import atomic_write_bytes
        from contrastkit.train.checkpoint import save_state
        from contrastkit.train.export import export_encoder

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        export_encoder(self.recipe.encoder, out, self.config.encoder)
        tensors, scorer_config = self.scorer.state()
        save_state(
            out / "detector.safetensors",
            {"recipe": self.recipe.state_dict(), "scorer": tensors},
        )
        meta = {
            "format": DETECTOR_FORMAT,
            "config": asdict(self.config),
            "encoder_config": getattr(self.recipe.encoder, "config", {}),
            "image_shape": list(self.image_shape),
            "threshold": self.threshold,
            "scorer": scorer_config,
            "info": self.info,
        }
        atomic_write_bytes(out / "detector.json", json.dumps(meta, indent=2).encode())
        return out


def _scorer_inputs(scorer: Any, feats: dict[str, Tensor]) -> dict[str, Any]:
    """The arguments of ``scorer.score`` from :meth:`Detector.features`' output."""
    if scorer.method == "csi":
        uses_logits = "mu" in scorer.tensors  # left out when the rotation head was untrained
        return {"query": feats["z"], "query_logits": feats["logits"] if uses_logits else None}
    return {"query": feats["embedding"]}


def _fit_shape(images: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """uint8 images in the detector's (C, H, W): channels converted, resized bilinearly."""
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}."
        )
    c, h, w = shape
    x = images
    if x.shape[1] != c:
        if c == 1:
            x = x.float().mean(1, keepdim=True).round().to(torch.uint8)
        else:
            x = x.expand(-1, c, -1, -1) if x.shape[1] == 1 else x[:, :c]
    if tuple(x.shape[2:]) != (h, w):
        x = torch.nn.functional.interpolate(x.float(), size=(h, w), mode="bilinear")
        x = x.round().clamp(0, 255).to(torch.uint8)
    return x


def holdout_split(n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(training rows, held-out rows) of ``n`` normal images, a seeded random ``fraction``."""
    held = max(1, int(round(n * fraction)))
    if n - held < 2:
        raise ValueError(
            f"{n} normal images are too few: {held} are held out for the threshold and at "
            f"least 2 are needed for training; add images or lower --holdout."
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[held:].sort().values, perm[:held].sort().values


def fit_detector(
    normal: Any,
    cfg: AnomalyConfig | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Detector:
    """Train a CSI detector on normal images only and set its threshold.

    Args:
        normal: an :class:`contrastkit.data.datasets.ImageSet` of normal images (labels, if
            any, are ignored), uint8 (N, C, H, W) with H = W.
        cfg: the options (:class:`AnomalyConfig`).
        out_dir: where to save the detector (None: not saved; training checkpoints go to a
            temporary folder).

    Returns:
        the :class:`Detector`; ``info`` holds the counts, the held-out false-positive rate at
        the threshold and the training time.
    """
    from contrastkit.data.datasets import ImageSet
    from contrastkit.evaluate.anomaly import AnomalyScorer, false_positive_rate, threshold_at_fpr
    from contrastkit.train import TrainConfig, Trainer

    cfg = cfg or AnomalyConfig()
    images = normal.images if isinstance(normal, ImageSet) else torch.as_tensor(normal)
    if cfg.image_size:
        images = _fit_shape(images, (images.shape[1], cfg.image_size, cfg.image_size))
    if images.dim() != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(
            f"anomaly detection takes square images (rotations by 90°), got "
            f"{tuple(images.shape[1:])}; pass image_size (--image-size) to resize them."
        )
    fit_rows, held_rows = holdout_split(images.shape[0], cfg.holdout, cfg.seed)
    torch.manual_seed(cfg.seed)
    c, size = int(images.shape[1]), int(images.shape[2])
    recipe = _build_recipe(cfg, _build_encoder(cfg, c), size, c)
    train_set = ImageSet(images[fit_rows], None, name="normal/train")
    tmp = None if out_dir else tempfile.TemporaryDirectory(prefix="contrastkit-anomaly-")
    run_dir = Path(out_dir) / "checkpoints" if out_dir else Path(tmp.name)  # type: ignore[union-attr]
    tcfg = TrainConfig(
        epochs=cfg.epochs,
        batch_size=min(cfg.batch_size, len(train_set)),
        optimizer="adam",
        lr=cfg.lr,
        lr_scaling="none",
        weight_decay=1e-6,
        warmup_epochs=1.0 if cfg.epochs > 2 else 0.0,
        precision=cfg.precision,
        max_minutes=cfg.minutes,
        fit_to_budget=cfg.minutes is not None,
        seed=cfg.seed,
        out_dir=str(run_dir),
        progress=cfg.progress,
        tensorboard=False,
        monitor_every=0,
    )
    t0 = time.perf_counter()
    try:
        history = Trainer(recipe, train_set, tcfg).fit()
    finally:
        if tmp is not None:
            tmp.cleanup()
    train_s = time.perf_counter() - t0
    recipe.eval()
    det = Detector(recipe, None, math.nan, cfg, (c, size, size))
    bank = det.features(images[fit_rows])
    scorer = AnomalyScorer(cfg.score)
    if cfg.score == "csi":
        try:
            scorer.fit(bank["z"], bank_logits=bank["logits"])
        except ValueError as err:  # an untrained rotation head: its term has no weight
            if "logit" not in str(err):
                raise
            warnings.warn(
                f"the rotation head's term is left out of the CSI score: {err}", stacklevel=2
            )
            scorer = AnomalyScorer(cfg.score).fit(bank["z"])
    else:
        scorer.fit(bank["embedding"])
    det.scorer, det.bank = scorer, bank
    held_scores = scorer.score(**_scorer_inputs(scorer, det.features(images[held_rows])))
    det.threshold = float(threshold_at_fpr(held_scores, cfg.fpr))
    det.info = {
        "normal_images": int(images.shape[0]),
        "trained_on": len(fit_rows),
        "held_out": len(held_rows),
        "held_out_fpr": float(false_positive_rate(held_scores, det.threshold)),
        "target_fpr": cfg.fpr,
        "epochs": len(history),
        "train_seconds": round(train_s, 1),
        "last_loss": float(history[-1]["loss"]) if history else math.nan,
        "held_out_scores": held_scores.tolist(),
    }
    if out_dir:
        det.save(out_dir)
    return det


#: the ``format`` of every detector.json (image and table detectors)
DETECTOR_FORMAT = "contrastkit-anomaly-detector/1"


def read_detector_meta(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """(detector.json as a dict, the path of detector.safetensors) of a detector folder.

    Raises:
        FileNotFoundError: the folder lacks either file.
        ValueError: detector.json is not valid JSON or not a contrastkit detector's.
    """
    folder = Path(path)
    meta_path, weights = folder / "detector.json", folder / "detector.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"{folder} has no detector.json + detector.safetensors; pass the --out folder of "
            f"`contrastkit anomaly fit`."
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(
            f"{meta_path} is not valid JSON ({err}); the detector is damaged: refit it with "
            f"`contrastkit anomaly fit`."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != DETECTOR_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(
            f"{meta_path} is not a contrastkit anomaly detector (format {got!r}); refit it "
            f"with `contrastkit anomaly fit`."
        )
    return meta, weights


def load_detector(path: str | os.PathLike) -> Detector:
    """Load a detector written by :meth:`Detector.save` (``contrastkit anomaly fit --out``).

    Raises:
        FileNotFoundError: the folder has no detector.json / detector.safetensors.
        ValueError: the files are not a detector this version reads.
    """
    from contrastkit.evaluate.anomaly import AnomalyScorer
    from contrastkit.train.checkpoint import load_state
    from contrastkit.train.export import load_weights

    folder = Path(path)
    meta, weights = read_detector_meta(folder)
    if meta.get("kind") == "table":
        raise ValueError(
            f"{folder} holds a table detector; load it with "
            f"contrastkit.app.anomaly_tables.load_table_detector (contrastkit anomaly score "
            f"does so itself)."
        )
    known = {f.name for f in fields(AnomalyConfig)}
    cfg = AnomalyConfig(**{k: v for k, v in meta["config"].items() if k in known})
    c, h, _ = meta["image_shape"]
    recipe = _build_recipe(cfg, _build_encoder(cfg, c), h, c)
    state = load_state(weights)
    load_weights(recipe, state["recipe"], str(weights), "refit the detector")
    recipe.eval()
    scorer = AnomalyScorer.from_state(state["scorer"], meta["scorer"])
    return Detector(recipe, scorer, float(meta["threshold"]), cfg, (c, h, h), meta["info"])


def score_folder(
    detector: str | os.PathLike | Detector,
    data: str | os.PathLike,
    normal_classes: list[str] | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Score every image of a folder; with ``normal_classes`` and a labelled folder
    (``data/<class>/*.png``), also AUROC against those labels.

    Returns:
        ``{"rows": [{"path", "score", "flag", "class"?}], "threshold", "flagged",
        "auroc"?, "images"}``; the tensors of the scores and labels under ``"_scores"``,
        ``"_anomalous"`` and ``"_images"`` (for the report).
    """
    from contrastkit.data.datasets import load_image_folder
    from contrastkit.evaluate.anomaly import auroc

    det = detector if isinstance(detector, Detector) else load_detector(detector)
    c, h, _ = det.image_shape
    split = load_image_folder(data, image_size=h, channels=c, test_fraction=0.0)
    images = split.train
    scores = det.score(images.images)
    t = det.threshold if threshold is None else float(threshold)
    flags = scores > t
    paths = images.paths or [str(i) for i in range(len(images))]
    rows: list[dict[str, Any]] = []
    for i, p in enumerate(paths):
        row = {"path": p, "score": float(scores[i]), "flag": bool(flags[i])}
        if images.labels is not None and images.classes:
            row["class"] = images.classes[int(images.labels[i])]
        rows.append(row)
    out: dict[str, Any] = {
        "data": str(data),
        "images": len(rows),
        "threshold": t,
        "flagged": int(flags.sum()),
        "target_fpr": det.config.fpr,
        "rows": rows,
        "_scores": scores,
        "_images": images.images,
    }
    if normal_classes:
        if images.labels is None:
            raise ValueError(
                f"--normal needs a labelled folder ({data}/<class>/*.png) to compare the scores "
                f"with; {data} has no class sub-folders."
            )
        unknown = sorted(set(normal_classes) - set(images.classes))
        if unknown:
            raise ValueError(
                f"--normal names {unknown}, not classes of {data}; its classes: {images.classes}."
            )
        normal_ids = torch.tensor([images.classes.index(n) for n in normal_classes])
        anomalous = ~torch.isin(images.labels, normal_ids)
        if anomalous.all() or (~anomalous).all():
            raise ValueError(
                f"AUROC needs both normal and anomalous images; {data} has "
                f"{int((~anomalous).sum())} normal and {int(anomalous.sum())} anomalous ones."
            )
        out["auroc"] = float(auroc(scores, anomalous))
        out["normal_classes"] = list(normal_classes)
        out["fpr_at_threshold"] = float(flags[~anomalous].float().mean())
        out["tpr_at_threshold"] = float(flags[anomalous].float().mean())
        out["_anomalous"] = anomalous
    return out


def write_anomaly_files(result: dict[str, Any], out: str | os.PathLike) -> Path:
    """Write ``scores.csv`` (path, score, flag[, class]), ``anomaly.json`` (the summary) and
    ``report.html`` (score histogram, ROC curve when labelled, the most and least anomalous
    images) to the folder ``out``."""
    import csv
    import io

    from contrastkit._io import atomic_write_bytes
    from contrastkit.evaluate.report import write_report

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    first = result["rows"][0] if result["rows"] else {}
    keys = [k for k in ("path", "row", "score", "flag", "class", "label") if k in first]
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for row in result["rows"]:
        writer.writerow({k: row[k] for k in keys})
    atomic_write_bytes(folder / "scores.csv", buf.getvalue().encode())
    summary = {k: v for k, v in result.items() if not k.startswith("_") and k != "rows"}
    atomic_write_bytes(folder / "anomaly.json", json.dumps(summary, indent=2).encode())
    figures = anomaly_figures(
        result["_scores"], result.get("_anomalous"), result["threshold"], result["_images"]
    )
    metrics = {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
    write_report(
        folder / "report.html",
        title=f"contrastkit anomaly scores of {result['data']}",
        metrics=metrics,
        maps=(),
        figures=figures,
    )
    return folder


def anomaly_figures(
    scores: Tensor,
    anomalous: Tensor | None,
    threshold: float,
    images: Tensor | None = None,
    shown: int = 8,
) -> list[tuple[str, bytes]]:
    """The report's pictures: the score histogram (normal vs anomalous when labelled, with the
    threshold), the ROC curve (when labelled) and the ``shown`` most and least anomalous
    images as thumbnails with their scores."""
    from contrastkit.evaluate.report import _plt, _png

    plt = _plt()
    s = scores.float().numpy()
    out: list[tuple[str, bytes]] = []
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(float(s.min()), float(s.max()) + 1e-9, 50)
    if anomalous is not None:
        a = anomalous.numpy().astype(bool)
        ax.hist(s[~a], bins=bins, alpha=0.6, density=True, label=f"normal ({(~a).sum()})")
        ax.hist(s[a], bins=bins, alpha=0.6, density=True, label=f"anomalous ({a.sum()})")
    else:
        ax.hist(s, bins=bins, alpha=0.7, label=f"images ({len(s)})")
    ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.append(("Anomaly scores", _png(fig)))
    if anomalous is not None:
        from contrastkit.evaluate.anomaly import auroc, roc_points

        fpr, tpr = roc_points(scores, anomalous)
        fig, ax = plt.subplots(figsize=(3.8, 3.6))
        ax.plot(fpr, tpr, lw=1.5, label=f"AUROC {auroc(scores, anomalous):.3f}")
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="chance")
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        out.append(("ROC curve", _png(fig)))
    if images is not None and len(s):
        order = np.argsort(-s)
        k = min(shown, len(s))
        for title, picks in (
            ("Most anomalous", order[:k]),
            ("Least anomalous", order[::-1][:k]),
        ):
            fig, axes = plt.subplots(1, k, figsize=(1.3 * k, 1.6), squeeze=False)
            for ax, i in zip(axes[0], picks, strict=True):
                img = images[int(i)].permute(1, 2, 0).numpy()
                ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray")
                ax.set_title(f"{s[int(i)]:.3g}", fontsize=7)
                ax.axis("off")
            fig.tight_layout()
            out.append((title, _png(fig)))
    return out
