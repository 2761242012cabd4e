"""One-class anomaly detection for tables: fit a detector on normal rows only, score new rows,
flag them at a threshold set for a false-positive rate on held-out normal rows.

The table counterpart of :mod:`contrastkit.app.anomaly` (images), with the same options
(:class:`~contrastkit.app.anomaly.AnomalyConfig`), the same held-out draw
(:func:`~contrastkit.app.anomaly.holdout_split`) and the same file format
(``detector.json`` + ``detector.safetensors`` beside ``encoder.json`` +
``encoder.safetensors``), marked ``"kind": "table"``. The detector
(:class:`TableDetector`):

- reading: :func:`contrastkit.data.tables.read_table` (a CSV / TSV / parquet file, a pandas
  DataFrame or a built-in table; no target: every row is normal), bad values and missing
  cells noted in ``info["notes"]``;
- a held-out part of the normal rows (``cfg.holdout``, seeded) is never trained on: its
  scores set the threshold at the target false-positive rate (``cfg.fpr``). No anomaly is
  ever looked at;
- preprocessing: a :class:`~contrastkit.data.tables.TablePreprocessor` (``"quantile"``
  scaling, medians and categories) fitted on the training rows only, saved as JSON;
- training: SCARF (Bahri et al. 2022) on the training rows, with the paper's settings
  (:data:`SCARF_PAPER`): a :class:`~contrastkit.encoders.tabular.TabularMLP` of 4 ReLU layers
  of 256 units, corruption rate 0.6, τ = 1, Adam, batch 128 (``cfg.lr``, default 1e-3);
  ``steps`` steps, by default ``cfg.epochs`` passes over the training rows capped at
  :data:`MAX_DEFAULT_STEPS` (and stopped early by ``cfg.minutes``);
- scores (higher = more anomalous) on the encoder's embeddings, :data:`TABLE_SCORES`:
  ``"knn"`` (Euclidean distance to the nearest training row's embedding; the default) or
  ``"mahalanobis"`` (shrunk-covariance Mahalanobis distance). The embeddings are not
  L2-normalised (unlike the image detector's): their norm carries how extreme a row is, and
  normalising them loses it (benign-vs-malignant AUROC on ``breast_cancer`` falls from about
  0.9 to 0.4). ``"csi"`` needs rotations of
  images and is refused for tables. Since ``AnomalyConfig``'s own default is the image score
  ``"csi"``, :func:`fit_table_detector` reads ``cfg.score == "csi"`` as "not chosen" and uses
  ``"knn"``; to choose explicitly pass ``score=`` (``score="csi"`` raises a ValueError).

Image-only options of ``AnomalyConfig`` (``encoder``, ``width``, ``batch_size``,
``temperature``, ``shifts``, ``flip``, ``crop_scale``, ``precision``, ``image_size``) are
ignored; training runs on the CPU in float32.

Numbers beyond the training range are clipped to it by the quantile scaling, so a value far
outside it scores like the most extreme normal value of its column (combined with the other
columns it may still be off the normal rows' manifold).

Example:
    >>> import numpy as np, pandas as pd
    >>> from contrastkit.app.anomaly import AnomalyConfig
    >>> from contrastkit.app.anomaly_tables import fit_table_detector, score_table
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=300)
    >>> normal = pd.DataFrame({"a": z, "b": 2 * z + 0.1 * rng.normal(size=300),
    ...                        "kind": np.where(z > 0, "up", "down")})
    >>> det = fit_table_detector(normal, AnomalyConfig(progress=False), steps=20)
    >>> new = pd.DataFrame({"a": [0.5, 1.0], "b": [1.0, -2.0], "kind": ["up", "down"]})
    >>> det.score(new).shape
    torch.Size([2])
    >>> result = score_table(det, new)  # {"rows": [{"row", "score", "flag"}], "flagged", ...}
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contrastkit.app.anomaly import (
    DETECTOR_FORMAT,
    AnomalyConfig,
    holdout_split,
    read_detector_meta,
)

__all__ = [
    "FORMAT",
    "MAX_DEFAULT_STEPS",
    "SCARF_PAPER",
    "TABLE_SCORES",
    "TableDetector",
    "detector_kind",
    "fit_table_detector",
    "is_table_source",
    "load_table_detector",
    "score_table",
]

#: the anomaly scores of a table detector (``"csi"`` is for images: it rotates them)
TABLE_SCORES = ("knn", "mahalanobis")
#: the ``"format"`` of ``detector.json`` (shared with the image detector; ``"kind"`` differs)
FORMAT = DETECTOR_FORMAT
#: the SCARF paper's settings (§4): encoder 4 × 256 ReLU, head 2 layers, c = 0.6, τ = 1,
#: batch 128 (Adam; the learning rate is ``AnomalyConfig.lr``, 1e-3 by default as in the paper)
SCARF_PAPER: dict[str, Any] = {
    "hidden": 256,
    "depth": 4,
    "corruption_rate": 0.6,
    "temperature": 1.0,
    "proj_layers": 2,
    "batch_size": 128,
}
#: the most pre-training steps when ``steps`` is not given (``cfg.epochs`` passes otherwise)
MAX_DEFAULT_STEPS = 2000
#: the encoder's registry name (``encoder.json``)
_ENCODER_NAME = "tabular_mlp"
_TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".parquet", ".pq")
_CHUNK = 4096


def is_table_source(source: Any) -> bool:
    """True for what :func:`fit_table_detector` and :func:`score_table` read: a pandas
    DataFrame, a ``.csv`` / ``.tsv`` / ``.parquet`` path (optionally ``.gz`` etc.) or the name
    of a built-in table; False for anything else (e.g. an image folder).

    Example:
        >>> is_table_source("normal.csv"), is_table_source("breast_cancer"), is_table_source("imgs/")
        (True, True, False)
    """
    if type(source).__name__ == "DataFrame":
        return True
    if not isinstance(source, (str, os.PathLike)):
        return False
    path = Path(source)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _TABLE_SUFFIXES:
        return True
    if isinstance(source, str) and not path.exists():
        try:
            from contrastkit.data.tables import BUILTIN_TABLES
        except ImportError:  # no pandas: no built-in tables either
            return False
        return source.strip().lower().replace("-", "_") in BUILTIN_TABLES
    return False


def detector_kind(path: str | os.PathLike) -> str:
    """``"table"`` or ``"image"``: the kind of the detector saved in the folder ``path`` (an
    image detector's ``detector.json`` has no ``"kind"``).

    Raises:
        FileNotFoundError: no ``detector.json`` there.
        ValueError: not a contrastkit anomaly detector.
    """
    meta, _ = read_detector_meta(path)
    return str(meta.get("kind", "image"))


def _resolve_score(cfg: AnomalyConfig, score: str | None) -> str:
    """The table score: ``score`` when given, else ``cfg.score`` with the image default
    ``"csi"`` read as ``"knn"``."""
    chosen = score if score is not None else ("knn" if cfg.score == "csi" else cfg.score)
    if chosen == "csi":
        raise ValueError(
            "the 'csi' score rotates images and does not apply to tables; use --score knn "
            "(the default for tables) or --score mahalanobis (score='knn' or 'mahalanobis')."
        )
    if chosen not in TABLE_SCORES:
        raise ValueError(f"unknown score {chosen!r} for tables; use one of {TABLE_SCORES}.")
    return chosen


def _build_recipe(n_numeric: int, cardinalities: list[int], encoder_config: dict | None = None):
    from contrastkit.encoders.tabular import TabularMLP
    from contrastkit.recipes.scarf import SCARF, SCARFConfig

    if encoder_config is None:
        encoder = TabularMLP(
            n_numeric, cardinalities, hidden=SCARF_PAPER["hidden"], depth=SCARF_PAPER["depth"]
        )
    else:
        encoder = TabularMLP(**encoder_config)
    config = SCARFConfig(
        corruption_rate=SCARF_PAPER["corruption_rate"],
        temperature=SCARF_PAPER["temperature"],
        proj_layers=SCARF_PAPER["proj_layers"],
    )
    return SCARF(encoder, config)


def _features_of(pre: Any, table: Any) -> tuple[Tensor, list[str]]:
    """``(preprocessed rows (N, F) float32, notes on unseen categories and bad values)`` of a
    RawTable or DataFrame with the fitted columns."""
    from contrastkit.data.tables import RawTable

    frame = table.frame if isinstance(table, RawTable) else table
    if type(frame).__name__ != "DataFrame":
        raise TypeError(
            f"a table detector scores a pandas DataFrame, a RawTable (read_table), a "
            f".csv/.tsv/.parquet path or preprocessed rows (an (N, F) tensor); got a "
            f"{type(table).__name__}."
        )
    absent = [c for c in pre.numeric + pre.categorical if c not in frame.columns]
    if absent:
        raise ValueError(
            f"the table lacks the columns {absent} that the detector was fitted on; give rows "
            f"with the columns {pre.numeric + pre.categorical} (others are ignored)."
        )
    return pre._transform(frame)


@dataclass
class TableDetector:
    """A fitted one-class table detector: the SCARF network, the scorer fitted on the training
    rows' embeddings, the preprocessor, and the threshold set on held-out normal rows.

    Attributes:
        recipe: the trained :class:`~contrastkit.recipes.scarf.SCARF` recipe (``.encoder`` is
            the :class:`~contrastkit.encoders.tabular.TabularMLP`).
        scorer: the :class:`contrastkit.evaluate.anomaly.AnomalyScorer` fitted on the training
            rows' embeddings.
        threshold: rows scoring above it are flagged.
        config: the :class:`~contrastkit.app.anomaly.AnomalyConfig` it was fitted with
            (``score`` is the table score used).
        preprocessor: the fitted :class:`~contrastkit.data.tables.TablePreprocessor`.
        columns: ``numeric``, ``categorical`` (the raw columns read), ``feature_names``,
            ``n_numeric`` and ``cardinalities`` (the preprocessed layout).
        info: counts, the held-out false-positive rate, timings, the reader's notes.
    """

    recipe: Any
    scorer: Any
    threshold: float
    config: AnomalyConfig
    preprocessor: Any
    columns: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder(self) -> torch.nn.Module:
        """The trained tabular encoder."""
        return self.recipe.encoder

    def rows(self, table: Any) -> Tensor:
        """Preprocessed rows (N, F) float32 of a DataFrame, :class:`RawTable` or table path
        (an (N, F) tensor is taken as already preprocessed)."""
        if isinstance(table, Tensor):
            f = self.preprocessor.num_features
            if table.dim() != 2 or table.shape[1] != f:
                raise ValueError(
                    f"preprocessed rows must be an (N, {f}) tensor (the detector's "
                    f"preprocessor's output), got {tuple(table.shape)}; pass a DataFrame to "
                    f"preprocess it."
                )
            return table.float()
        if isinstance(table, (str, os.PathLike)):
            table = _read_scored(self.preprocessor, table, None)[0]
        x, notes = _features_of(self.preprocessor, table)
        if notes:
            import warnings

            warnings.warn("; ".join(notes) + ".", stacklevel=3)
        return x

    @torch.no_grad()
    def features(self, table: Any, batch_size: int = _CHUNK) -> Tensor:
        """Encoder embeddings (N, E) float32 of the rows of ``table`` (see :meth:`rows`)."""
        x = self.rows(table)
        self.recipe.eval()
        out = [
            self.recipe.encoder(x[s : s + batch_size]).float()
            for s in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out) if out else torch.zeros(0, self.recipe.encoder.out_dim)

    def score(self, table: Any) -> Tensor:
        """Anomaly scores (N,) float32 of the rows of ``table``; higher = more anomalous."""
        return self.scorer.score(self.features(table))

    def flag(self, scores: Tensor) -> Tensor:
        """(N,) bool: the scores above the threshold."""
        return torch.as_tensor(scores) > self.threshold

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write detector.json + detector.safetensors and encoder.json + encoder.safetensors
        (atomically; no pickles). Returns the folder."""
        from contrastkit._io import atomic_write_bytes
        from contrastkit.train.checkpoint import save_state
        from contrastkit.train.export import export_encoder

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        export_encoder(self.recipe.encoder, out, _ENCODER_NAME)
        tensors, scorer_config = self.scorer.state()
        save_state(
            out / "detector.safetensors",
            {"recipe": self.recipe.state_dict(), "scorer": tensors},
        )
        meta = {
            "format": FORMAT,
            "kind": "table",
            "config": asdict(self.config),
            "encoder": _ENCODER_NAME,
            "encoder_config": dict(self.recipe.encoder.config),
            "scarf": asdict(self.recipe.config),
            "preprocessor": self.preprocessor.to_json(),
            "columns": self.columns,
            "threshold": self.threshold,
            "scorer": scorer_config,
            "info": self.info,
        }
        atomic_write_bytes(out / "detector.json", json.dumps(meta, indent=2).encode())
        return out


def _pretrain(recipe: Any, x: Tensor, steps: int, cfg: AnomalyConfig) -> tuple[int, float]:
    """SCARF on the rows ``x`` for ``steps`` steps (fewer when ``cfg.minutes`` runs out);
    (steps done, mean loss of the last 50)."""
    n = x.shape[0]
    bs = min(SCARF_PAPER["batch_size"], n)
    opt = torch.optim.Adam(recipe.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    order, pos, recent = torch.randperm(n, generator=g), 0, []
    deadline = time.perf_counter() + 60.0 * cfg.minutes if cfg.minutes else math.inf
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="SCARF on the normal rows", leave=False)
    recipe.train()
    done = 0
    try:
        while done < steps:
            if pos + bs > n:  # a new pass; the last incomplete batch is dropped
                order, pos = torch.randperm(n, generator=g), 0
            idx = order[pos : pos + bs]
            pos += bs
            out = recipe.step({"table": x[idx], "indices": idx})
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            done += 1
            recent = [*recent[-49:], float(out.loss.detach())]
            if bar is not None:
                bar.update()
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", refresh=False)
            if time.perf_counter() > deadline:
                break
    finally:
        if bar is not None:
            bar.close()
    recipe.eval()
    return done, (sum(recent) / len(recent) if recent else math.nan)


def fit_table_detector(
    source: Any,
    cfg: AnomalyConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    drop: str | list[str] | None = None,
    steps: int | None = None,
    score: str | None = None,
) -> TableDetector:
    """Train a SCARF detector on normal rows only and set its threshold.

    Args:
        source: the normal rows: a ``.csv`` / ``.tsv`` / ``.parquet`` path, a pandas
            DataFrame, a :class:`~contrastkit.data.tables.RawTable` or a built-in table name
            (its target column is left out). No target: every row counts as normal.
        cfg: the options (:class:`~contrastkit.app.anomaly.AnomalyConfig`); used here:
            ``score``, ``epochs``, ``minutes``, ``lr``, ``holdout``, ``fpr``, ``seed``,
            ``progress``.
        out_dir: where to save the detector (None: not saved).
        drop: columns that are not features (identifiers, a label column).
        steps: SCARF pre-training steps (default ``cfg.epochs`` passes over the training rows
            at batch 128, at most :data:`MAX_DEFAULT_STEPS`).
        score: ``"knn"`` or ``"mahalanobis"``; None: ``cfg.score``, where ``"csi"`` (the image
            default of ``AnomalyConfig``) means ``"knn"``. ``"csi"`` given here raises.

    Returns:
        the :class:`TableDetector`; ``info`` holds the counts (``rows``, ``trained_on``,
        ``held_out``), ``held_out_fpr``, ``target_fpr``, ``steps``, ``epochs``,
        ``train_seconds``, ``last_loss``, ``held_out_scores`` and the reader's ``notes``.

    Raises:
        ValueError: the ``"csi"`` score or an unknown one, too few rows, ``steps`` < 1, and
            the reader's errors (unknown columns, no feature columns, no rows).
    """
    from contrastkit.data.tables import RawTable, TablePreprocessor, read_table
    from contrastkit.evaluate.anomaly import AnomalyScorer, false_positive_rate, threshold_at_fpr

    cfg = cfg or AnomalyConfig()
    method = _resolve_score(cfg, score)
    cfg = replace(cfg, score=method)
    if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps < 1):
        raise ValueError(f"steps must be a whole number ≥ 1 (pre-training steps), got {steps!r}.")
    if isinstance(source, RawTable) and drop:
        raise ValueError(
            "drop= applies when the table is read; give the path or DataFrame, or read it "
            "with read_table(..., drop=...) yourself."
        )
    raw = source if isinstance(source, RawTable) else read_table(source, target=None, drop=drop)
    n = len(raw)
    try:
        fit_rows, held_rows = holdout_split(n, cfg.holdout, cfg.seed)
    except ValueError:
        held = max(1, int(round(n * cfg.holdout)))
        raise ValueError(
            f"{n} normal rows are too few: {held} are held out for the threshold and at least "
            f"2 are needed for training; add rows or lower --holdout."
        ) from None
    pre = TablePreprocessor("quantile").fit(raw, fit_rows)
    x_all, unseen = pre._transform(raw)
    x_fit, x_held = x_all[fit_rows], x_all[held_rows]
    bs = min(SCARF_PAPER["batch_size"], len(fit_rows))
    per_epoch = max(1, len(fit_rows) // bs)
    if steps is None:
        steps = max(1, min(MAX_DEFAULT_STEPS, cfg.epochs * per_epoch))
    torch.manual_seed(cfg.seed)
    recipe = _build_recipe(pre.n_numeric, pre.cardinalities)
    recipe.set_reference(x_fit)
    t0 = time.perf_counter()
    done, last_loss = _pretrain(recipe, x_fit, int(steps), cfg)
    train_s = time.perf_counter() - t0
    columns = {
        "numeric": list(pre.numeric),
        "categorical": list(pre.categorical),
        "feature_names": list(pre.feature_names),
        "n_numeric": pre.n_numeric,
        "cardinalities": list(pre.cardinalities),
    }
    det = TableDetector(recipe, None, math.nan, cfg, pre, columns)
    # the embeddings as they are: their norm tells how extreme a row is (L2-normalising them
    # drops the AUROC of benign-vs-malignant breast_cancer rows from about 0.9 to 0.4)
    scorer = AnomalyScorer(method, normalize=False).fit(det.features(x_fit))
    det.scorer = scorer
    held_scores = scorer.score(det.features(x_held))
    det.threshold = float(threshold_at_fpr(held_scores, cfg.fpr))
    det.info = {
        "rows": n,
        "trained_on": len(fit_rows),
        "held_out": len(held_rows),
        "held_out_fpr": float(false_positive_rate(held_scores, det.threshold)),
        "target_fpr": cfg.fpr,
        "score": method,
        "steps": done,
        "epochs": round(done * bs / len(fit_rows), 1),
        "train_seconds": round(train_s, 1),
        "last_loss": last_loss,
        "held_out_scores": held_scores.tolist(),
        "notes": list(raw.notes) + [f"held-out rows: {m}" for m in unseen],
    }
    if out_dir:
        det.save(out_dir)
    return det


def load_table_detector(path: str | os.PathLike) -> TableDetector:
    """Load a detector written by :meth:`TableDetector.save` (``contrastkit anomaly fit
    --data normal.csv --out``).

    Raises:
        FileNotFoundError: the folder has no detector.json / detector.safetensors.
        ValueError: the files are not a table detector this version reads (an image detector
            names :func:`contrastkit.app.anomaly.load_detector`).
        DamagedFileError: detector.safetensors does not match its checksum.
    """
    from contrastkit.data.tables import TablePreprocessor
    from contrastkit.evaluate.anomaly import AnomalyScorer
    from contrastkit.train.checkpoint import load_state
    from contrastkit.train.export import load_weights

    folder = Path(path)
    meta, weights = read_detector_meta(folder)
    if meta.get("kind") != "table":
        raise ValueError(
            f"{folder} holds an image anomaly detector, not a table one; score images with it "
            f"(contrastkit.app.anomaly.load_detector / score_folder), or fit a table detector "
            f"with `contrastkit anomaly fit --data normal.csv`."
        )
    try:
        known = {f.name for f in fields(AnomalyConfig)}
        cfg = AnomalyConfig(**{k: v for k, v in meta["config"].items() if k in known})
        pre = TablePreprocessor.from_json(meta["preprocessor"])
        recipe = _build_recipe(pre.n_numeric, pre.cardinalities, meta["encoder_config"])
        scorer_config, threshold = meta["scorer"], float(meta["threshold"])
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"{folder / 'detector.json'} lacks or garbles {err}; the detector is damaged or "
            f"from another "
            f"version: refit it with `contrastkit anomaly fit`."
        ) from None
    state = load_state(weights)
    load_weights(recipe, state["recipe"], str(weights), "refit the detector")
    recipe.eval()
    scorer = AnomalyScorer.from_state(state["scorer"], scorer_config)
    columns = meta.get("columns") or {
        "numeric": list(pre.numeric),
        "categorical": list(pre.categorical),
        "feature_names": list(pre.feature_names),
        "n_numeric": pre.n_numeric,
        "cardinalities": list(pre.cardinalities),
    }
    return TableDetector(recipe, scorer, threshold, cfg, pre, columns, meta.get("info", {}))


def _builtin_target(source: Any) -> str | None:
    """The target column of a built-in table named by ``source`` (else None)."""
    if not isinstance(source, str) or os.path.exists(source):
        return None
    from contrastkit.data.tables import BUILTIN_TABLES

    spec = BUILTIN_TABLES.get(source.strip().lower().replace("-", "_"))
    return spec.target if spec else None


def _read_scored(pre: Any, source: Any, label_column: str | None) -> tuple[Any, list | None]:
    """``(RawTable of the rows to score, their labels as strings (None = missing) or None)``:
    the fitted columns read as the kinds they were fitted as; every row kept."""
    from contrastkit.data.tables import RawTable, read_table

    fitted = pre.numeric + pre.categorical
    if label_column is not None and label_column in fitted:
        raise ValueError(
            f"the label column {label_column!r} was a feature of the detector when it was "
            f"fitted; refit it without that column (drop=[{label_column!r}], --drop "
            f"{label_column}) to score against it."
        )
    if isinstance(source, RawTable):
        if label_column is None:
            return source, None
        if label_column == source.target_name:
            return source, [None if v is None else str(v) for v in source.target]
        if label_column not in source.frame.columns:
            raise ValueError(
                f"no column {label_column!r} in the table; its columns are "
                f"{list(source.frame.columns)} (target {source.target_name!r})."
            )
        return source, [None if v is None else str(v) for v in source.frame[label_column]]
    builtin = _builtin_target(source)
    by_target = label_column is not None and label_column == builtin
    categorical = list(pre.categorical)
    if label_column is not None and not by_target:
        categorical.append(label_column)  # read as category names, missing kept as None
    try:
        raw = read_table(source, target=None, numeric=pre.numeric, categorical=categorical)
    except ValueError as err:
        if "no column" not in str(err):
            raise
        raise ValueError(
            f"{err} The rows to score need the columns the detector was fitted on "
            f"({fitted})" + (f" and the label column {label_column!r}." if label_column else ".")
        ) from None
    if label_column is None:
        return raw, None
    values = raw.target if by_target else raw.frame[label_column]
    return raw, [None if v is None else str(v) for v in values]


def _as_key(v: Any) -> str:
    """A label value as the reader names categories (``1`` and ``1.0`` → ``"1"``)."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def score_table(
    detector_or_path: TableDetector | str | os.PathLike,
    source: Any,
    label_column: str | None = None,
    normal_values: list[Any] | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Score every row of a table; with ``label_column`` and ``normal_values``, also AUROC
    against that column (rows whose label is not among ``normal_values`` are anomalies).

    The label column is never a feature: the detector reads only the columns it was fitted on.

    Args:
        detector_or_path: a :class:`TableDetector` or its saved folder.
        source: the rows: a ``.csv`` / ``.tsv`` / ``.parquet`` path, a pandas DataFrame, a
            :class:`~contrastkit.data.tables.RawTable` or a built-in table name.
        label_column: a column of labels, for AUROC (needs ``normal_values``).
        normal_values: the labels of normal rows (compared as the reader names categories:
            ``1`` and ``"1"`` match).
        threshold: another threshold than the detector's.

    Returns:
        ``{"data", "rows_scored", "images" (the same count, for the CLI's summary),
        "threshold", "flagged", "target_fpr", "notes", "rows": [{"row", "score", "flag",
        "label"?}], "auroc"?, "fpr_at_threshold"?, "tpr_at_threshold"?, "label_column"?,
        "normal_values"?, "normal_classes"?}``; tensors under ``"_scores"``, ``"_anomalous"``
        (with labels) and ``"_images"`` (None) for the report. ``"row"`` counts the table's
        rows from 0.

    Raises:
        ValueError: ``normal_values`` without ``label_column`` (or the reverse), a label
            column that was a feature, missing labels, normal values absent from the column,
            labels that are all normal or all anomalous, columns the detector needs missing.
    """
    from contrastkit.evaluate.anomaly import auroc

    if (label_column is None) != (not normal_values):
        raise ValueError(
            "AUROC needs both the label column and the normal values: pass label_column and "
            "normal_values together (--label-column C --normal V), or neither."
        )
    det = (
        detector_or_path
        if isinstance(detector_or_path, TableDetector)
        else load_table_detector(detector_or_path)
    )
    raw, labels = _read_scored(det.preprocessor, source, label_column)
    x, notes = _features_of(det.preprocessor, raw)
    scores = det.score(x)
    t = det.threshold if threshold is None else float(threshold)
    flags = scores > t
    rows: list[dict[str, Any]] = []
    for i in range(len(scores)):
        row: dict[str, Any] = {"row": i, "score": float(scores[i]), "flag": bool(flags[i])}
        if labels is not None:
            row["label"] = labels[i]
        rows.append(row)
    data = source if isinstance(source, (str, os.PathLike)) else getattr(raw, "name", "table")
    out: dict[str, Any] = {
        "data": str(data),
        "rows_scored": len(rows),
        "images": len(rows),
        "threshold": t,
        "flagged": int(flags.sum()),
        "target_fpr": det.config.fpr,
        "notes": list(raw.notes) + notes,
        "rows": rows,
        "_scores": scores,
        "_images": None,
    }
    if labels is None:
        return out
    missing = [i for i, v in enumerate(labels) if v is None]
    if missing:
        raise ValueError(
            f"{len(missing)} rows have no label in {label_column!r} (e.g. row {missing[0]}, "
            f"counting from 0); AUROC needs a label on every row: fill them or drop those rows."
        )
    normal = [_as_key(v) for v in normal_values or []]
    present = sorted(set(labels))
    unknown = sorted(set(normal) - set(present))
    if unknown:
        raise ValueError(
            f"--normal names {unknown}, not values of {label_column!r}; its values: "
            f"{present[:20]}{' ...' if len(present) > 20 else ''}."
        )
    anomalous = torch.tensor([v not in normal for v in labels], dtype=torch.bool)
    if anomalous.all() or (~anomalous).all():
        raise ValueError(
            f"AUROC needs both normal and anomalous rows; {label_column!r} gives "
            f"{int((~anomalous).sum())} normal and {int(anomalous.sum())} anomalous ones."
        )
    out["auroc"] = float(auroc(scores, anomalous))
    out["label_column"] = label_column
    out["normal_values"] = normal
    out["normal_classes"] = normal
    out["fpr_at_threshold"] = float(flags[~anomalous].float().mean())
    out["tpr_at_threshold"] = float(flags[anomalous].float().mean())
    out["_anomalous"] = anomalous
    return out
