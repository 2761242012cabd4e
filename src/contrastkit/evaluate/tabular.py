"""The label-fraction protocol of tabular self-supervision (SCARF, VIME): for each fraction f
of the TRAINING labels (a stratified, seeded subset, at least one row per class), the test
accuracy of

- ``probe``: a logistic regression on the frozen, standardised embeddings of the pre-trained
  encoder, its C chosen on the validation split;
- ``finetune``: the pre-trained encoder + a linear head, trained on the labelled subset with
  Adam, early-stopped on validation accuracy;
- ``scratch``: the same architecture from a random initialisation, trained exactly like
  ``finetune`` (same step cap, evaluation interval, patience, learning rate, batch order);
- ``hgb``: scikit-learn's HistGradientBoostingClassifier on the preprocessed table itself
  (categorical code columns passed as categorical), its hyper-parameters chosen on validation
  from a small fixed grid;
- ``majority``: the most frequent training class (chance).

Selection uses the validation split only, never the test split. By default the whole
validation split is used at every fraction, as in the SCARF paper (only the training labels
are reduced; the 10% validation split stays labelled): the validation rows are labelled data
the user holds out for model selection, and every method gets the same ones, so the
comparison between methods is fair; absolute figures at 1% are what a user with a held-out
validation set of that size would see. ``scale_validation=True`` subsamples the validation
split in the same proportion instead (stratified, ≥ 1 per class), for a user whose only
labels are the fraction f of everything.

Rows are float tensors (N, F) laid out as ``[n_numeric numeric columns | categorical codes as
floats]`` (:mod:`contrastkit.data.tables`); labels (N,) int64 in 0..C−1.

Example:
    >>> import torch
    >>> from contrastkit.encoders.tabular import TabularMLP
    >>> from contrastkit.evaluate.graph import label_fraction_subset
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(300, 4, generator=g); y = (x[:, 0] > 0).long()
    >>> make = lambda: TabularMLP(4, [], hidden=16, depth=2)
    >>> r = label_fraction_eval(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:],
    ...     encoder_factory=make, pretrained_encoder=make(), fractions=(0.5,),
    ...     finetune=FinetuneConfig(max_steps=100), label_subset=label_fraction_subset)
    >>> r["hgb@0.5"] > 0.8 and r["scratch@0.5"] > 0.8 and 0.3 < r["majority"] < 0.7
    True
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DEFAULT_CS",
    "HGB_GRID",
    "FinetuneConfig",
    "encode",
    "finetune_accuracy",
    "hgb_accuracy",
    "label_fraction_eval",
    "majority_accuracy",
    "probe_accuracy",
    "select_on_validation",
    "train_classifier",
]

#: the probe's inverse L2 penalties, chosen on validation
DEFAULT_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)

#: HistGradientBoosting settings tried (chosen on validation): scikit-learn's defaults with the
#: code columns as categorical; smaller leaves (down to 1 row) for the few-label fractions,
#: where 20 rows per leaf forbid any split; and the codes as ordered numbers (``"categorical": False``), since
#: scikit-learn splits only on categories with at least 10 rows in the node, so at a few
#: labels per class a categorical column can hardly be split
HGB_GRID: tuple[dict[str, Any], ...] = (
    {"learning_rate": 0.1, "min_samples_leaf": 20, "max_iter": 100},
    {"learning_rate": 0.1, "min_samples_leaf": 4, "max_iter": 100},
    {"learning_rate": 0.1, "min_samples_leaf": 4, "max_iter": 100, "categorical": False},
    {"learning_rate": 0.1, "min_samples_leaf": 1, "max_iter": 100, "categorical": False},
)


@dataclass
class FinetuneConfig:
    """How ``finetune`` and ``scratch`` train (identically): Adam on cross-entropy, batches
    drawn by passes over the labelled rows in a seeded order, validation accuracy every
    ``eval_every`` steps, the best state kept, stopped after ``patience`` evaluations without
    improvement or at ``max_steps``.

    Attributes:
        lr: Adam's learning rate (0.001 in the SCARF paper, pre-training and fine-tuning).
        weight_decay: Adam's (L2) weight decay.
        batch_size: rows per step (at most the labelled rows); 128 in the SCARF paper.
        max_steps: the cap on optimiser steps.
        eval_every: steps between validation evaluations.
        patience: evaluations without a better validation accuracy before stopping.
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    max_steps: int = 2000
    eval_every: int = 50
    patience: int = 10


def _tensor(a: Any, dtype: torch.dtype | None = None) -> Tensor:
    t = a if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))
    return t.to(dtype) if dtype is not None else t


def _device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def encode(encoder: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """(N, F) rows → (N, D) float32 CPU embeddings of ``encoder`` in eval mode (its mode is
    restored afterwards).

    Example:
        >>> encode(nn.Linear(3, 2), torch.randn(5, 3)).shape
        torch.Size([5, 2])
    """
    was_training = encoder.training
    encoder.eval()
    p = next(encoder.parameters(), None)
    device, dtype = (p.device, p.dtype) if p is not None else (torch.device("cpu"), None)
    try:
        out = [
            encoder(x[i : i + batch_size].to(device=device, dtype=dtype)).float().cpu()
            for i in range(0, x.shape[0], batch_size)
        ]
    finally:
        encoder.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, int(getattr(encoder, "out_dim", 0)))


def _accuracy(pred: Any, y: Any) -> float:
    p, t = np.asarray(pred).reshape(-1), np.asarray(y).reshape(-1)
    return float((p == t).mean()) if t.size else float("nan")


def probe_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    val_features: Tensor,
    val_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
) -> dict[str, float]:
    """Logistic regression on standardised features (mean and scale of ``train_features``),
    its C chosen by validation accuracy (ties: the smallest C), reported on test.

    Returns:
        ``{"accuracy": test, "val_accuracy": val, "C": chosen C}``.

    Example:
        >>> f = torch.randn(90, 3); y = (f[:, 1] > 0).long()
        >>> probe_accuracy(f[:30], y[:30], f[30:60], y[30:60], f[60:], y[60:])["accuracy"] > 0.8
        True
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    a = _tensor(train_features).double().numpy()
    mu, sd = a.mean(0), a.std(0)
    sd[sd == 0] = 1.0

    def prep(f: Tensor) -> np.ndarray:
        return (_tensor(f).double().numpy() - mu) / sd

    xa, xv, xt = prep(train_features), prep(val_features), prep(test_features)
    ya, yv, yt = (_tensor(v).numpy() for v in (train_labels, val_labels, test_labels))
    if np.unique(ya).size < 2:  # one class: nothing to fit, predict it
        only = ya[0]
        return {"accuracy": _accuracy(np.full_like(yt, only), yt),
                "val_accuracy": _accuracy(np.full_like(yv, only), yv), "C": float("nan")}  # fmt: skip
    best: tuple[float, float, Any] | None = None
    for c in sorted(Cs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LogisticRegression(C=float(c), max_iter=1000).fit(xa, ya)
        val = _accuracy(model.predict(xv), yv)
        if best is None or val > best[0]:
            best = (val, float(c), model)
    assert best is not None
    return {"accuracy": _accuracy(best[2].predict(xt), yt), "val_accuracy": best[0], "C": best[1]}


@torch.no_grad()
def _model_accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 2048) -> float:
    model.eval()
    hits = 0
    for i in range(0, x.shape[0], batch_size):
        hits += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    model.train()
    return hits / max(1, x.shape[0])


def train_classifier(
    encoder: nn.Module,
    x: Tensor,
    y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    num_classes: int,
    config: FinetuneConfig | None = None,
    seed: int = 0,
) -> tuple[nn.Module, dict[str, float]]:
    """Train ``encoder`` (in place) + a new linear head on (x (N, F), y (N,)), keeping the
    state of best validation accuracy (see :class:`FinetuneConfig`).

    Returns:
        ``(model, {"val_accuracy", "steps", "best_step"})``: ``model`` is
        ``nn.Sequential(encoder, head)`` mapping (B, F) rows to (B, num_classes) logits, in
        eval mode, at its best validation state.

    Example:
        >>> x = torch.randn(64, 3); y = (x[:, 0] > 0).long()
        >>> model, info = train_classifier(nn.Linear(3, 8), x, y, x, y, 2,
        ...                                FinetuneConfig(max_steps=60, eval_every=20))
        >>> model(x).shape, info["steps"] <= 60
        (torch.Size([64, 2]), True)
    """
    c = config or FinetuneConfig()
    device = _device(encoder)
    dtype = next(encoder.parameters()).dtype
    torch.manual_seed(seed)
    width = getattr(encoder, "out_dim", None) or getattr(encoder, "out_features", None)
    if width is None:
        raise ValueError("the encoder needs an out_dim attribute (its embedding width).")
    model = nn.Sequential(encoder, nn.Linear(int(width), int(num_classes)))
    model.to(device=device, dtype=dtype).train()
    x, y = x.to(device=device, dtype=dtype), y.to(device).long()
    val_x, val_y = val_x.to(device=device, dtype=dtype), val_y.to(device).long()
    opt = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    bs = max(1, min(int(c.batch_size), n))
    order, pos = torch.randperm(n, generator=g), 0
    best_val, best_state, best_step, stale, step = -1.0, None, 0, 0, 0
    for step in range(1, int(c.max_steps) + 1):
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=g), 0
        idx = order[pos : pos + bs].to(device)
        pos += bs
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % int(c.eval_every) == 0 or step == int(c.max_steps):
            val = _model_accuracy(model, val_x, val_y)
            if val > best_val:
                best_val, best_step, stale = val, step, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= int(c.patience):
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, {"val_accuracy": best_val, "steps": float(step), "best_step": float(best_step)}


def finetune_accuracy(
    encoder: nn.Module,
    x: Tensor,
    y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    num_classes: int,
    config: FinetuneConfig | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """:func:`train_classifier` on a copy of ``encoder``, then test accuracy:
    ``{"accuracy", "val_accuracy", "steps", "best_step"}``."""
    model, info = train_classifier(
        copy.deepcopy(encoder), x, y, val_x, val_y, num_classes, config, seed
    )
    device, dtype = _device(model), next(model.parameters()).dtype
    acc = _model_accuracy(model, test_x.to(device=device, dtype=dtype), test_y.to(device).long())
    return {"accuracy": acc, **info}


def _categorical_mask(x: np.ndarray, n_numeric: int, max_bins: int = 255) -> np.ndarray | None:
    """HGB's categorical columns: the code columns whose codes fit its bins (others stay
    numeric: scikit-learn takes at most ``max_bins`` categories)."""
    mask = np.zeros(x.shape[1], dtype=bool)
    if n_numeric < x.shape[1]:
        codes = x[:, n_numeric:]
        mask[n_numeric:] = codes.max(axis=0, initial=0) < max_bins
    return mask if mask.any() else None


def hgb_accuracy(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    n_numeric: int | None = None,
    grid: Sequence[dict[str, Any]] = HGB_GRID,
    seed: int = 0,
) -> dict[str, Any]:
    """HistGradientBoostingClassifier on the table itself: the columns from ``n_numeric`` on
    (category codes 0..K) passed as categorical (unless a setting says ``"categorical":
    False``: then they are ordered numbers), each setting of ``grid`` fitted without internal
    early stopping, the one of best validation accuracy (ties: the first) reported on test.
    Settings that differ only in ``categorical`` run once on a table without code columns.
    ``{"accuracy", "val_accuracy", "params"}``.

    Example:
        >>> x = torch.cat([torch.randn(120, 2), torch.randint(0, 3, (120, 1)).float()], 1)
        >>> y = ((x[:, 0] > 0) ^ (x[:, 2] == 1)).long()
        >>> r = hgb_accuracy(x[:60], y[:60], x[60:90], y[60:90], x[90:], y[90:], n_numeric=2)
        >>> r["accuracy"] > 0.8
        True
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    xa = _tensor(train_x).double().numpy()
    xv, xt = (_tensor(v).double().numpy() for v in (val_x, test_x))
    ya, yv, yt = (_tensor(v).numpy() for v in (train_y, val_y, test_y))
    nn_ = xa.shape[1] if n_numeric is None else int(n_numeric)
    cats = _categorical_mask(np.concatenate([xa, xv, xt]), nn_)
    if np.unique(ya).size < 2:
        only = ya[0]
        return {"accuracy": _accuracy(np.full_like(yt, only), yt),
                "val_accuracy": _accuracy(np.full_like(yv, only), yv), "params": {}}  # fmt: skip
    best: tuple[float, dict[str, Any], Any] | None = None
    seen = []
    for params in grid:
        kw = {k: v for k, v in params.items() if k != "categorical"}
        use = cats if params.get("categorical", True) else None
        if (kw, use is None) in seen:
            continue
        seen.append((kw, use is None))
        model = HistGradientBoostingClassifier(
            categorical_features=use, early_stopping=False, random_state=seed, **kw
        ).fit(xa, ya)
        val = _accuracy(model.predict(xv), yv)
        if best is None or val > best[0]:
            best = (val, dict(params), model)
    assert best is not None
    return {"accuracy": _accuracy(best[2].predict(xt), yt), "val_accuracy": best[0],
            "params": best[1]}  # fmt: skip


def majority_accuracy(train_y: Tensor, test_y: Tensor) -> float:
    """Test accuracy of always predicting the most frequent training class (ties: the
    smallest label).

    Example:
        >>> majority_accuracy(torch.tensor([0, 1, 1]), torch.tensor([1, 1, 0, 1]))
        0.75
    """
    ya, yt = _tensor(train_y).long(), _tensor(test_y).long()
    top = int(torch.bincount(ya).argmax())
    return float((yt == top).float().mean())


def _key(fraction: float) -> str:
    return f"{float(fraction):g}"


def select_on_validation(
    results: dict[str, float], fraction: float, candidates: Sequence[str] = ("probe", "finetune")
) -> tuple[str, float]:
    """Of ``candidates`` evaluated at ``fraction`` by :func:`label_fraction_eval`, the one of
    best validation accuracy (ties: the first listed) and its test accuracy.

    Example:
        >>> r = {"probe@0.1": 0.8, "probe@0.1:val": 0.7, "finetune@0.1": 0.9,
        ...      "finetune@0.1:val": 0.75}
        >>> select_on_validation(r, 0.1)
        ('finetune', 0.9)
    """
    f = _key(fraction)
    present = [m for m in candidates if f"{m}@{f}:val" in results]
    if not present:
        raise KeyError(f"none of {list(candidates)} was evaluated at fraction {f}.")
    best = max(present, key=lambda m: (results[f"{m}@{f}:val"], -present.index(m)))
    return best, results[f"{best}@{f}"]


def _default_label_subset() -> Callable[[Tensor, float, int], Tensor]:
    from contrastkit.data.tables import label_fraction_indices

    return label_fraction_indices


def label_fraction_eval(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    encoder_factory: Callable[[], nn.Module],
    pretrained_encoder: nn.Module | None = None,
    fractions: Sequence[float] = (0.01, 0.1, 1.0),
    seed: int = 0,
    n_numeric: int | None = None,
    methods: Sequence[str] = ("probe", "finetune", "scratch", "hgb"),
    finetune: FinetuneConfig | None = None,
    Cs: Sequence[float] = DEFAULT_CS,
    hgb_grid: Sequence[dict[str, Any]] = HGB_GRID,
    scale_validation: bool = False,
    label_subset: Callable[[Tensor, float, int], Tensor] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """The label-fraction protocol (see the module's notes) on one split of one table.

    Args:
        train_x, val_x, test_x: (N_s, F) float rows; train_y, val_y, test_y: (N_s,) labels
            in 0..C−1.
        encoder_factory: ``() → nn.Module`` building the architecture from a random
            initialisation (``scratch``); the module has ``out_dim``. Called after
            ``torch.manual_seed``, so reproducible.
        pretrained_encoder: the pre-trained encoder (``probe``, ``finetune``; both skipped when
            None). Never modified: fine-tuning trains a copy.
        fractions: fractions of the training labels, each in (0, 1].
        seed: the seed of the label subsets and of every training run.
        n_numeric: the numeric columns (the rest are category codes, given to HGB as
            categorical); default: every column numeric.
        methods: which of ``"probe"``, ``"finetune"``, ``"scratch"``, ``"hgb"`` to run
            (``majority`` is always reported).
        finetune: how ``finetune`` and ``scratch`` train (:class:`FinetuneConfig`).
        Cs: the probe's candidate C. hgb_grid: HGB's candidate settings.
        scale_validation: subsample the validation split to the same fraction (stratified,
            ≥ 1 per class) instead of using all of it (see the module's notes).
        label_subset: ``(labels, fraction, seed) → sorted indices``; default
            :func:`contrastkit.data.tables.label_fraction_indices`.
        progress: optional ``callable(str)`` told what runs (e.g. ``tqdm.write``).

    Returns:
        A flat dict: for each method and fraction f, ``"{method}@{f}"`` (test accuracy) and
        ``"{method}@{f}:val"`` (validation accuracy at the chosen setting); ``"labelled@{f}"``
        (labelled training rows), ``"probe@{f}:C"``, ``"finetune@{f}:steps"`` /
        ``"scratch@{f}:steps"`` (steps run), ``"{method}@{f}:seconds"``; and ``"majority"``
        (test accuracy of the training majority class).
    """
    known = ("probe", "finetune", "scratch", "hgb")
    bad = [m for m in methods if m not in known]
    if bad:
        raise ValueError(f"unknown methods {bad}; choose from {list(known)}.")
    for f in fractions:
        if not 0.0 < float(f) <= 1.0:
            raise ValueError(f"fractions must lie in (0, 1], got {f}.")
    xs = [_tensor(v, torch.float32) for v in (train_x, val_x, test_x)]
    ys = [_tensor(v).long().reshape(-1) for v in (train_y, val_y, test_y)]
    for name, xv, yv in zip(("train", "val", "test"), xs, ys, strict=True):
        if xv.dim() != 2 or xv.shape[0] != yv.shape[0]:
            raise ValueError(
                f"{name}_x must be (N, F) with one label per row in {name}_y; got shapes "
                f"{tuple(xv.shape)} and {tuple(yv.shape)}."
            )
        if yv.numel() == 0:
            raise ValueError(f"the {name} split is empty.")
        if int(yv.min()) < 0:
            raise ValueError(f"{name}_y holds negative labels; encode classes as 0..C−1.")
    (xa, xv, xt), (ya, yv, yt) = xs, ys
    num_classes = int(max(int(v.max()) for v in ys)) + 1
    subset = label_subset or _default_label_subset()
    say = progress or (lambda _msg: None)
    run = set(methods)
    if pretrained_encoder is None:
        run -= {"probe", "finetune"}
    results: dict[str, float] = {"majority": majority_accuracy(ya, yt)}
    feats = None
    if "probe" in run:
        assert pretrained_encoder is not None
        feats = [encode(pretrained_encoder, v) for v in (xa, xv, xt)]
    for frac in fractions:
        f = _key(frac)
        idx = _tensor(subset(ya, float(frac), seed)).long()
        results[f"labelled@{f}"] = float(idx.numel())
        vidx = (
            _tensor(subset(yv, float(frac), seed + 1)).long()
            if scale_validation
            else torch.arange(yv.shape[0])
        )
        sub_x, sub_y, val_sx, val_sy = xa[idx], ya[idx], xv[vidx], yv[vidx]
        if "probe" in run:
            assert feats is not None
            t0 = time.perf_counter()
            say(f"probe @ {f}")
            r = probe_accuracy(feats[0][idx], sub_y, feats[1][vidx], val_sy, feats[2], yt, Cs=Cs)
            results.update({f"probe@{f}": r["accuracy"], f"probe@{f}:val": r["val_accuracy"],
                            f"probe@{f}:C": r["C"],
                            f"probe@{f}:seconds": time.perf_counter() - t0})  # fmt: skip
        for method in ("finetune", "scratch"):
            if method not in run:
                continue
            t0 = time.perf_counter()
            say(f"{method} @ {f}")
            if method == "finetune":
                encoder = pretrained_encoder
            else:
                torch.manual_seed(seed)
                encoder = encoder_factory()
            assert encoder is not None
            r = finetune_accuracy(
                encoder, sub_x, sub_y, val_sx, val_sy, xt, yt, num_classes, finetune, seed
            )
            results.update({f"{method}@{f}": r["accuracy"], f"{method}@{f}:val": r["val_accuracy"],
                            f"{method}@{f}:steps": r["steps"],
                            f"{method}@{f}:seconds": time.perf_counter() - t0})  # fmt: skip
        if "hgb" in run:
            t0 = time.perf_counter()
            say(f"hgb @ {f}")
            r = hgb_accuracy(
                sub_x, sub_y, val_sx, val_sy, xt, yt, n_numeric=n_numeric, grid=hgb_grid, seed=seed
            )
            results.update({f"hgb@{f}": r["accuracy"], f"hgb@{f}:val": r["val_accuracy"],
                            f"hgb@{f}:seconds": time.perf_counter() - t0})  # fmt: skip
    return results
