"""One experiment end to end: data → recipe → training → test-set evaluation → results.json.

This is what ``contrastkit train`` runs. A held-out validation split is carved from the
training data for the online kNN monitor; the official test split is only touched once, at the
end, for the reported numbers.

The run's options are one :class:`~contrastkit.app.config.RunConfig` (data, model, recipe,
train, eval).

Example:
    >>> import tempfile
    >>> from contrastkit.app.config import RunConfig
    >>> from contrastkit.app.experiment import run_experiment
    >>> cfg = RunConfig.from_dict({"data": {"name": "digits"},
    ...                            "train": {"epochs": 1, "batch_size": 128,
    ...                                      "out_dir": tempfile.mkdtemp(), "progress": False},
    ...                            "eval": {"linear_probe": False, "report": False}})
    >>> results = run_experiment(cfg)
    >>> sorted(k for k in results["test"] if not k.startswith("raw_pixel_"))
    ['knn_acc', 'knn_acc_k200', 'knn_k', 'knn_val_acc']
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from contrastkit.app.config import RunConfig
from contrastkit.app.splits import split_validation
from contrastkit.data import load_dataset
from contrastkit.data.datasets import DataSplits, ImageSet
from contrastkit.encoders import build_encoder
from contrastkit.evaluate import (
    DEFAULT_K_GRID,
    classification_report,
    extract_features,
    knn_accuracies,
    linear_probe,
    select_knn_k,
)
from contrastkit.evaluate.report import write_report
from contrastkit.recipes import RECIPES
from contrastkit.train import Trainer
from contrastkit.train.checkpoint import atomic_write_bytes

__all__ = [
    "RECIPES",
    "RunConfig",
    "build_recipe",
    "demo_config",
    "embed_dataset",
    "evaluate_encoder",
    "knn_protocol",
    "run_experiment",
    "split_validation",
]


def build_recipe(
    cfg: RunConfig, image_shape: tuple[int, int, int], num_classes: int | None = None
) -> tuple[Any, str]:
    """Build the encoder and recipe for images of shape (C, H, W); return (recipe, encoder name).

    The recipe's ``image_size``, ``channels`` and ``num_classes`` left unset come from the
    data (:meth:`RunConfig.resolved`). With ``cfg.model.init_encoder`` the encoder is loaded
    from an exported folder (fine-tuning).
    """
    cfg = cfg.resolved(image_shape, num_classes)
    m = cfg.model
    c, h, _ = image_shape
    small = m.small_input if m.small_input is not None else h <= 64
    if m.init_encoder:
        from contrastkit.train import load_encoder

        enc = load_encoder(m.init_encoder).train()
        name = json.loads((Path(m.init_encoder) / "encoder.json").read_text())["encoder"]
    elif m.encoder.startswith("resnet"):
        enc = build_encoder(m.encoder, in_channels=c, small_input=small, width=m.width)
    elif m.encoder == "small_cnn":
        enc = build_encoder(m.encoder, in_channels=c, width=int(max(8, m.width * 128)))
    elif m.encoder == "mlp":
        enc = build_encoder(m.encoder, in_dim=c * h * h, hidden=(512,), out_dim=256)
    else:
        enc = build_encoder(m.encoder, in_channels=c)
    name = name if m.init_encoder else m.encoder
    return cfg.recipe_class(enc, cfg.recipe_config()), name


def knn_protocol(
    f_bank: torch.Tensor,
    y_bank: torch.Tensor,
    f_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    n_val: int,
    ks: tuple[int, ...] = DEFAULT_K_GRID,
    k_fixed: int = 200,
    temperature: float = 0.1,
    prefix: str = "",
) -> dict[str, float]:
    """Test kNN accuracy with k chosen on a validation split, and with a fixed k beside it.

    ``f_bank`` (N, D) / ``y_bank`` (N,) hold the whole labelled training data, its last
    ``n_val`` rows being the validation part. k is selected with the other rows as the bank
    and the validation rows as queries; the test queries (T, D) then use all N rows as the bank.
    The test split plays no part in any choice.

    Returns ``{prefix}knn_acc`` (selected k), ``{prefix}knn_k``, ``{prefix}knn_val_acc`` and
    ``{prefix}knn_acc_k{k_fixed}``.
    """
    knn = dict(temperature=temperature)
    out: dict[str, float] = {}
    k = k_fixed
    if ks:
        fit, val = slice(0, len(f_bank) - n_val), slice(len(f_bank) - n_val, None)
        k, accs = select_knn_k(
            f_bank[fit], y_bank[fit], f_bank[val], y_bank[val], ks=tuple(ks), **knn
        )
        out[f"{prefix}knn_val_acc"] = accs[k]
    test_accs = knn_accuracies(f_bank, y_bank, f_test, y_test, ks=(k, k_fixed), **knn)
    out[f"{prefix}knn_acc"], out[f"{prefix}knn_k"] = test_accs[k], k
    out[f"{prefix}knn_acc_k{k_fixed}"] = test_accs[k_fixed]
    return out


def raw_pixel_knn(train: ImageSet, test: ImageSet, *, n_val: int, **knn: Any) -> dict[str, float]:
    """:func:`knn_protocol` on flattened raw pixels (keys prefixed ``raw_pixel_``): the baseline."""
    return knn_protocol(
        train.images.flatten(1).float(),
        train.labels,
        test.images.flatten(1).float(),
        test.labels,
        n_val=n_val,
        prefix="raw_pixel_",
        **knn,
    )


def run_experiment(cfg: RunConfig, resume: bool = False) -> dict[str, Any]:
    """Train and evaluate; write ``results.json`` (and the encoder) into ``cfg.train.out_dir``.

    Text recipes (``simcse``, ``text_supcon``) run
    :func:`~contrastkit.app.text.run_text_experiment`. ``results.json`` holds the run's
    ``config`` in the nested form, with what the recipe and the data filled in.
    """
    if cfg.modality == "text":
        from contrastkit.app.text import run_text_experiment

        return run_text_experiment(cfg, resume=resume)
    t_start = time.time()
    torch.manual_seed(cfg.train.seed)
    data: DataSplits = load_dataset(cfg.data.name)
    train, val = split_validation(data.train, cfg.data.val_size, cfg.train.seed)
    cfg = cfg.resolved(train.image_shape, len(data.train.classes) or None)
    recipe, enc_name = build_recipe(cfg, train.image_shape, len(data.train.classes) or None)
    monitor = (train, val) if train.labels is not None else None
    trainer = Trainer(recipe, train, cfg.train, monitor=monitor, encoder_name=enc_name)
    history = trainer.fit(resume=resume)
    train_seconds = time.time() - t_start
    if not trainer.is_main:  # evaluation, report and results.json belong to process 0
        return {"train_seconds": train_seconds, "history": history, "rank": trainer.rank}
    ev = cfg.eval
    results: dict[str, Any] = {
        "config": cfg.to_dict(),
        "data": {"name": data.name, "train": len(train), "val": len(val)},
        "precision": trainer.precision,
        "train_seconds": train_seconds,
        # the epochs planned (fewer than train.epochs when fitted to the time budget)
        "epochs": trainer.epochs,
        "history": history,
    }
    test = data.test
    if test is not None and test.labels is not None and train.labels is not None:
        kw = dict(device=trainer.device, bf16=trainer.precision == "bf16")
        # the whole official training split (training part, then the validation part) is the
        # kNN bank and the linear probe's training data; the validation part chooses k
        full = ImageSet(
            torch.cat([train.images, val.images]), torch.cat([train.labels, val.labels])
        )
        f_full = extract_features(recipe.encoder, full.images, **kw)
        f_test = extract_features(recipe.encoder, test.images, **kw)
        knn = dict(
            n_val=len(val),
            ks=ev.knn_select_k,
            k_fixed=cfg.train.knn_k,
            temperature=cfg.train.knn_temperature,
        )
        res: dict[str, Any] = knn_protocol(f_full, full.labels, f_test, test.labels, **knn)
        confusion = None
        if hasattr(recipe, "classifier"):  # supervised / fine-tuned: the trained linear head
            with torch.no_grad():
                pred = recipe.classifier(f_test.to(trainer.device)).argmax(1).cpu()
            rep = classification_report(pred, test.labels, len(test.classes))
            res["classifier_acc"] = rep["accuracy"]
            res["classifier_macro_f1"] = rep["macro_f1"]
            confusion = rep["confusion_matrix"]
        if ev.linear_probe:
            probe = linear_probe(f_full, full.labels, f_test, test.labels)
            res["linear_probe_acc"] = probe["accuracy"]
            rep = classification_report(probe["predictions"], test.labels, len(test.classes))
            res["linear_probe_macro_f1"] = rep["macro_f1"]
            confusion = rep["confusion_matrix"]
        # the same kNN protocol on raw pixels, the baseline every number should be read against
        res.update(raw_pixel_knn(full, test, **knn))
        results["test"] = res
        if ev.report:
            metrics = {f"test {k}": v for k, v in res.items()}
            metrics.update(
                {
                    "recipe": cfg.recipe.name,
                    "data": f"{data.name} (train {len(train)}, val {len(val)}, test {len(test)})",
                    "encoder": f"{cfg.model.encoder} width {cfg.model.width}",
                    "epochs": trainer.epoch,
                    "precision": trainer.precision,
                    "train minutes": train_seconds / 60,
                }
            )
            results["report"] = str(
                write_report(
                    Path(cfg.train.out_dir) / "report.html",
                    title=f"contrastkit {cfg.recipe.name} on {data.name}",
                    metrics=metrics,
                    history=history,
                    features=f_test,
                    labels=test.labels,
                    images=test.images,
                    classes=test.classes,
                    confusion=confusion,
                    maps=ev.report_maps,
                    seed=cfg.train.seed,
                )
            )
    results["total_seconds"] = time.time() - t_start
    out = Path(cfg.train.out_dir)
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=2).encode())
    return results


def demo_config(out_dir: str = "runs/demo", epochs: int = 150) -> RunConfig:
    """The ``contrastkit demo`` run: SimCLR on scikit-learn's digits (ships with scikit-learn),
    a quarter-width ResNet-18 with the small-image stem, LARS, 150 epochs (about a minute on 2
    CPU cores), then test kNN / linear probe and the HTML report."""
    return RunConfig.from_dict(
        {
            "data": {"name": "digits"},
            "model": {"encoder": "resnet18", "width": 0.25},
            "recipe": {"name": "simclr", "temperature": 0.2, "flip": 0.0},
            "train": {
                "epochs": epochs,
                "batch_size": 128,
                "optimizer": "lars",
                "lr": 0.8,
                "weight_decay": 1e-5,
                "monitor_every": 10,
                "out_dir": out_dir,
            },
        }
    )


def evaluate_encoder(
    encoder_dir: str | os.PathLike,
    data: str,
    *,
    knn_k: int = 200,
    knn_temperature: float = 0.1,
    knn_select_k: tuple[int, ...] = DEFAULT_K_GRID,
    val_size: float = 0.1,
    seed: int = 0,
    probe: bool = True,
    report: str | os.PathLike | None = None,
    device: str = "cpu",
) -> dict[str, float]:
    """Evaluate an exported encoder on a data set's test split (features fitted on train).

    The kNN's k is chosen on ``val_size`` images held out of the training split (see
    :func:`knn_protocol`); the test split is only used for the reported numbers.
    Returns test kNN accuracy, linear-probe accuracy and macro F1, precision@1 and MAP@R of the
    test embeddings, and the raw-pixel kNN baseline; optionally writes an HTML report.
    """
    from contrastkit.evaluate import map_at_r, precision_at_k
    from contrastkit.train import load_encoder

    splits = load_dataset(data)
    if splits.test is None or splits.test.labels is None or splits.train.labels is None:
        raise ValueError(f"{data} needs labelled train and test splits for evaluation.")
    enc = load_encoder(encoder_dir, device=device)
    part, val = split_validation(splits.train, val_size, seed)
    full = ImageSet(torch.cat([part.images, val.images]), torch.cat([part.labels, val.labels]))
    f_train = extract_features(enc, full.images, device=device)
    f_test = extract_features(enc, splits.test.images, device=device)
    tr_y, te_y = full.labels, splits.test.labels
    knn = dict(n_val=len(val), ks=knn_select_k, k_fixed=knn_k, temperature=knn_temperature)
    res: dict[str, float] = knn_protocol(f_train, tr_y, f_test, te_y, **knn)
    res.update(raw_pixel_knn(full, splits.test, **knn))
    res["precision_at_1"] = precision_at_k(f_test, te_y, 1)
    res["map_at_r"] = map_at_r(f_test, te_y)
    confusion = None
    if probe:
        out = linear_probe(f_train, tr_y, f_test, te_y)
        rep = classification_report(out["predictions"], te_y, len(splits.test.classes))
        res.update(
            linear_probe_acc=out["accuracy"],
            linear_probe_macro_precision=rep["macro_precision"],
            linear_probe_macro_recall=rep["macro_recall"],
            linear_probe_macro_f1=rep["macro_f1"],
        )
        confusion = rep["confusion_matrix"]
    if report:
        write_report(
            report,
            title=f"contrastkit evaluation on {splits.name}",
            metrics={f"test {k}": v for k, v in res.items()},
            features=f_test,
            labels=te_y,
            images=splits.test.images,
            classes=splits.test.classes,
            confusion=confusion,
        )
    return res


def embed_dataset(
    encoder_dir: str | os.PathLike,
    data: str,
    out: str | os.PathLike,
    *,
    split: str = "test",
    device: str = "cpu",
) -> Path:
    """Write embeddings of one split: ``.npy`` (an (N, D) array, with ``<name>.ids.npy`` and
    ``<name>.labels.npy`` beside it) or ``.parquet`` (columns id, label, embedding)."""
    import numpy as np

    from contrastkit.train import load_encoder

    splits = load_dataset(data)
    part = splits.train if split == "train" else splits.test
    if part is None:
        raise ValueError(f"{data} has no {split!r} split.")
    enc = load_encoder(encoder_dir, device=device)
    feats = extract_features(enc, part.images, device=device).numpy()
    ids = np.arange(len(part)) if part.paths is None else np.array(part.paths)
    labels = None if part.labels is None else part.labels.numpy()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {"id": ids, "embedding": list(feats)}
        if labels is not None:
            cols["label"] = labels
        pq.write_table(pa.table(cols), out)
    elif out.suffix == ".npy":
        np.save(out, feats)
        np.save(out.with_suffix(".ids.npy"), ids)
        if labels is not None:
            np.save(out.with_suffix(".labels.npy"), labels)
    else:
        raise ValueError(f"--out must end in .npy or .parquet, got {out.name}.")
    return out
