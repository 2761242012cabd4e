"""Tables in the one pipeline: loading, the encoder and recipe, and the label-fraction
evaluation.

Data (``data.name``, :func:`contrastkit.data.tables.load_table_splits`): a built-in table
(``mlc_churn``, ``wa_churn``, ``biopsy``, ``breast_cancer``, ``wine``, ``digits``) or a
CSV/TSV/parquet file with a target column (``data.target``). Numeric and categorical columns
are inferred (``data.numeric_columns``, ``data.categorical_columns`` and
``data.drop_columns`` override it); numbers are scaled (``data.scaling``), missing numbers
get the training median and an indicator column, categories become codes (0: missing or
unseen in training). The rows are split 60/20/20 train/val/test, stratified and seeded by
``train.seed``; every preprocessing statistic is fitted on the training rows only.

The encoder (``model.encoder``): ``mlp`` (the default) or ``resnet_mlp``; ``model.width``
> 1 sets its hidden width and ``model.layers`` its depth.

Evaluation (:mod:`contrastkit.evaluate.tabular`), on the test rows, at 1%, 10% and 100% of the
training labels: a linear probe on the frozen embeddings and a fine-tune, beside the same
network trained from scratch on the same labels, HistGradientBoosting and the majority class;
every choice (the probe's C, early stopping) is made on the validation rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

__all__ = [
    "TABULAR_ENCODERS",
    "build_table_encoder",
    "build_table_recipe",
    "load_table_data",
    "table_results",
]

#: ``model.encoder`` → registry name of the tabular encoder
TABULAR_ENCODERS = {"mlp": "tabular_mlp", "resnet_mlp": "tabular_resnet"}


def load_table_data(name: str, cfg: Any = None) -> Any:
    """The table of ``cfg.data`` split into train / val / test."""
    from contrastkit.data.tables import BUILTIN_TABLES, load_table_splits

    d = cfg.data if cfg is not None else None
    target = (d.target if d is not None else "") or None
    if target is None and name not in BUILTIN_TABLES:
        raise ValueError(
            f"a table needs the column to predict: add --target COLUMN (e.g. --data {name} "
            "--target churn); the evaluation's labels come from it, training never sees it."
        )
    kw: dict[str, Any] = {}
    if d is not None:
        kw = {
            "scaling": d.scaling,
            "numeric": list(d.numeric_columns) or None,
            "categorical": list(d.categorical_columns) or None,
            "drop": list(d.drop_columns) or None,
        }
    return load_table_splits(
        name, target=target, seed=cfg.train.seed if cfg is not None else 0, **kw
    )


def _encoder_name(cfg: Any) -> str:
    m = cfg.model
    if m.encoder == "resnet18":  # the tree's default, an image encoder: the recipe's own
        return "mlp"
    if m.encoder not in TABULAR_ENCODERS:
        raise ValueError(
            f"the {cfg.recipe.name} recipe trains a tabular encoder: --encoder "
            f"{' or '.join(TABULAR_ENCODERS)}, got {m.encoder!r} (default mlp)."
        )
    return m.encoder


def build_table_encoder(cfg: Any, rows: Any) -> tuple[Any, str]:
    """The tabular encoder of ``cfg.model`` for the columns of ``rows`` (a TableSet);
    (encoder, registry name)."""
    from contrastkit.encoders import build_encoder

    m = cfg.model
    name = TABULAR_ENCODERS[_encoder_name(cfg)]
    kw: dict[str, Any] = {"n_numeric": rows.n_numeric, "cardinalities": list(rows.cardinalities)}
    if m.width > 1:
        kw["hidden"] = int(m.width)
    if m.layers:
        kw["depth"] = int(m.layers)
    return build_encoder(name, **kw), name


def build_table_recipe(cfg: Any, train: Any, data: Any) -> tuple[Any, Any, str]:
    """(resolved config, recipe, encoder name) of a tabular recipe on ``train``."""
    cfg = cfg.resolved()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, compile=False))
    if not hasattr(train, "n_numeric"):
        raise ValueError(
            f"the {cfg.recipe.name} recipe trains on a table; give --data a CSV/TSV/parquet "
            "file with --target, or a built-in table such as mlc_churn."
        )
    encoder, name = build_table_encoder(cfg, train)
    recipe = cfg.recipe_class(encoder, cfg.recipe_config(), reference=train.x)
    return cfg, recipe, name


def table_results(
    cfg: Any,
    recipe: Any,
    frozen: Any,
    data: Any,
    train: Any,
    val: Any,
    trainer: Any,
    results: dict[str, Any],
) -> None:
    """Evaluate a tabular run at 1%, 10% and 100% of the labels, fill ``results`` and write
    the report (label-fraction curves)."""
    from contrastkit.evaluate.protocols.tabular import TabularProtocol
    from contrastkit.evaluate.report import (
        metric_rows,
        plot_label_fraction_curves,
        write_report,
    )
    from contrastkit.evaluate.tabular import FinetuneConfig

    result = TabularProtocol(
        fractions=cfg.eval.label_fractions,
        seed=cfg.train.seed,
        finetune=FinetuneConfig(max_steps=cfg.eval.finetune_steps),
    ).evaluate_encoder(recipe.encoder, data.train, data.val, data.test, device=trainer.device)
    results["evaluation"] = result.to_dict()
    lines = result.format().splitlines()
    if getattr(data, "note", ""):
        lines.append(data.note)
    results["summary"] = lines
    if not cfg.eval.report:
        return
    metrics: dict[str, Any] = metric_rows(lines[:3])
    metrics.update(
        {
            "recipe": cfg.recipe.name,
            "data": f"{data.name} ({len(data.train)} / {len(data.val)} / {len(data.test)} "
            "train / val / test rows)",
            "encoder": getattr(recipe.encoder, "config", cfg.model.encoder),
            "epochs": trainer.epoch,
            "precision": trainer.precision,
        }
    )
    curves = result.details["curves"]
    figures = [
        (
            "Test accuracy against the labels used",
            plot_label_fraction_curves(
                {k: {float(f): v for f, v in pts.items()} for k, pts in curves.items()},
                title=f"{data.name}: {cfg.recipe.name} beside its baselines",
            ),
        )
    ]
    fractions = sorted({float(f) for pts in curves.values() for f in pts})
    header = ["method", *(f"{100 * f:g}% labels" for f in fractions)]
    rows = [[name, *(pts.get(f"{f:g}", "") for f in fractions)] for name, pts in curves.items()]
    import torch

    from contrastkit.evaluate.features import extract_features

    features = extract_features(recipe.encoder, data.test.x, device=trainer.device)
    results["report"] = str(
        write_report(
            Path(cfg.train.out_dir) / "report.html",
            title=f"contrastkit {cfg.recipe.name} on {data.name}",
            metrics=metrics,
            history=results["history"],
            figures=figures,
            tables=[("Test accuracy by labels used", header, rows)],
            features=features,
            labels=torch.as_tensor(data.test.y),
            classes=list(data.test.classes) or None,
            maps=cfg.eval.report_maps,
            seed=cfg.train.seed,
        )
    )
