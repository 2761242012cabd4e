"""Entry points of the command line around the pipeline: the demo run, evaluating an exported
encoder, writing embeddings.

Training itself is :func:`contrastkit.app.pipeline.run` (also importable here as
``run_experiment``): data → recipe → trainer → protocol → results.json, for every modality.

Example:
    >>> from contrastkit.app.experiment import demo_config
    >>> cfg = demo_config("runs/demo")  # what `contrastkit demo` trains, then run_experiment(cfg)
    >>> cfg.recipe.name, cfg.data.name, cfg.model.encoder, cfg.eval.transformed_test
    ('simclr', 'digits', 'small_cnn', True)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from contrastkit.app.config import RunConfig
from contrastkit.app.pipeline import MODALITIES, build_recipe, evaluate_run
from contrastkit.app.pipeline import run as run_experiment
from contrastkit.app.splits import split_validation
from contrastkit.data import load_dataset
from contrastkit.evaluate import extract_features

#: the stages of evaluate_encoder and embed_dataset, at INFO (`contrastkit` shows them)
_log = logging.getLogger(__name__)

__all__ = [
    "RunConfig",
    "build_recipe",
    "demo_config",
    "embed_dataset",
    "evaluate_encoder",
    "run_experiment",
    "split_validation",
]


def demo_config(out_dir: str = "runs/demo", epochs: int = 60) -> RunConfig:
    """The ``contrastkit demo`` run: SimCLR on scikit-learn's digits (ships with scikit-learn,
    8×8 images), then kNN and a linear probe on the test digits, and on a fixed copy of them
    shifted, rotated and rescaled a little (``eval.transformed_test``), raw pixels beside every
    figure, and the HTML report (with a t-SNE map; UMAP's one-off compile would cost more
    than a tenth of the run). About a minute on 2 quiet CPU cores.

    Raw pixels are hard to beat on the clean test digits (centred and size-normalised, kNN
    about 0.98); what the encoder learns from the views (random resized crops: shifts and
    zooms) is to recognise a digit that moved. The settings were chosen on the validation
    split (its kNN accuracy on transformed validation digits) and on time, never on the test
    split: a small VGG-style CNN (32 channels in its first stage; a quarter-width ResNet-18,
    the earlier demo's, tried with 20-100% crops only, and a 48-channel CNN did no better), crops of 50-100% of the image (20-100%
    leaves too little of an 8×8 digit), LARS at lr 0.8, batch 128, temperature 0.2 (0.1 did
    worse), 60 epochs (100 and 150 did no better), the kNN monitor every 10 epochs.
    """
    return RunConfig.from_dict(
        {
            "data": {"name": "digits"},
            "model": {"encoder": "small_cnn", "width": 0.25},
            "recipe": {
                "name": "simclr",
                "temperature": 0.2,
                "flip": 0.0,
                "crop_scale": (0.5, 1.0),
            },
            "train": {
                "epochs": epochs,
                "batch_size": 128,
                "optimizer": "lars",
                "lr": 0.8,
                "weight_decay": 1e-5,
                "monitor_every": 10,
                "out_dir": out_dir,
            },
            "eval": {"transformed_test": True, "report_maps": ("tsne",)},
        }
    )


def evaluate_encoder(
    encoder_dir: str | os.PathLike,
    data: str,
    *,
    knn_k: int | None = None,
    knn_temperature: float | None = None,
    knn_select_k: tuple[int, ...] | str | None = None,
    val_size: float | None = None,
    seed: int | None = None,
    probe: bool | None = None,
    report: str | os.PathLike | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate an exported encoder on an image data set's test split with the
    classification protocol (:func:`contrastkit.app.pipeline.evaluate_run`), raw pixels and
    chance beside it.

    k is chosen on ``val_size`` images held out of the training split, among the grid's k
    that are at most a fifth of the remaining training images
    (:func:`~contrastkit.evaluate.protocols.classification.knn_k_cap`); the linear probe's
    penalty on a held-out part of the training images; the test split is only used for the
    reported figures. Options left at None take the config tree's defaults (``train.knn_k``,
    ``train.knn_temperature``, ``eval.knn_select_k``, ``data.val_size``, ``train.seed``,
    ``eval.linear_probe``): they are declared there only. ``knn_select_k`` may be the
    command line's comma-separated text.

    Stages are logged at INFO on the ``contrastkit`` loggers (``contrastkit evaluate`` shows
    them on stderr). Returns the protocol's flat result
    (:meth:`~contrastkit.evaluate.protocols.ProtocolResult.to_dict`) with its lines in words
    under ``"summary"`` (the figures, then which k the kNN used and why, and the probe's
    penalty); with ``report`` (an .html path, checked before any work) writes the HTML report
    there and gives its path under ``"report"``.
    """

    report_path = None if report is None else _output_path(report, (".html", ".htm"), "--report")
    given = {
        "data": {"name": data, "val_size": val_size},
        "train": {"knn_k": knn_k, "knn_temperature": knn_temperature, "seed": seed},
        "eval": {
            "knn_select_k": knn_select_k
            if knn_select_k is None or isinstance(knn_select_k, str)
            else tuple(knn_select_k),
            "linear_probe": probe,
        },
    }
    cfg = RunConfig.from_dict(
        {node: {k: v for k, v in opts.items() if v is not None} for node, opts in given.items()}
    )
    from contrastkit.app.text import is_text_data

    if is_text_data(data):
        return _evaluate_texts(str(encoder_dir), data, cfg, report_path, device)
    splits = load_dataset(data)
    if splits.test is None or splits.test.labels is None or splits.train.labels is None:
        raise ValueError(
            f"{data} needs labelled train and test splits for evaluation (a folder of "
            f"<class>/ subfolders, or train/ and test/ with <class>/ subfolders inside)."
        )
    enc = _image_encoder(encoder_dir, device)
    part, val = split_validation(splits.train, cfg.data.val_size, cfg.train.seed)
    n = len(part) + len(val) + len(splits.test)
    _log.info(
        "%s: %d training images (%d of them held out to choose k), %d test images; "
        "embedding all %d with the encoder in %s",
        splits.name,
        len(part) + len(val),
        len(val),
        len(splits.test),
        n,
        encoder_dir,
    )
    modality = MODALITIES["image"]
    result, features, rows = evaluate_run(
        cfg, modality, "classification", enc, part, val, splits.test, device=device
    )
    choice = _knn_choice_line(result, cfg.eval.knn_select_k, cfg.train.knn_k)
    lines = [*result.format().splitlines(), choice]
    d = result.details
    if "probe_weight_decay" in d:
        lines.append(
            f"linear probe: L2 penalty {d['probe_weight_decay']:g}, chosen on a held-out "
            f"{d['probe_val_fraction']:.0%} of the training images (validation accuracy "
            f"{d['probe_val_accuracy']:.3f})"
        )
    out: dict[str, Any] = {**result.to_dict(), "summary": lines}
    if report_path is not None:
        _write_report(
            report_path,
            f"contrastkit evaluation of {encoder_dir} on {splits.name}",
            lines,
            modality,
            features,
            rows,
            confusion=(
                d["confusion_matrix"],
                f"kNN with k={d['k']} (chosen on the validation images), "
                f"{result.split} split, {d['n_test']} images",
            ),
        )
        out["report"] = str(report_path)
    return out


def _evaluate_texts(
    encoder: str, data: str, cfg: RunConfig, report_path: Path | None, device: str
) -> dict[str, Any]:
    """:func:`evaluate_encoder` for texts: a labelled table is classified (kNN and probe,
    TF-IDF and chance beside them), a table of pairs is read as retrieval (each text finds its
    positive), on ``data.val_size`` rows held out of it (text files have no test split; every
    choice is made on the rest)."""
    from contrastkit.app.text import load_text_encoder

    modality = MODALITIES["text"]
    splits = modality.load(data)
    if splits.protocol not in ("classification", "retrieval"):
        raise ValueError(
            f"{data} has no labels or pairs to evaluate with; give a .csv/.tsv/.jsonl with a "
            "label column (classification) or a positive column (retrieval), or embed the "
            "texts with contrastkit embed."
        )
    enc = load_text_encoder(encoder, cfg.model.max_length)
    part, val = split_validation(splits.train, cfg.data.val_size, cfg.train.seed)
    _log.info(
        "%s: %d texts, %d of them held out for the figures (seed %d); embedding with %s",
        splits.name,
        len(part) + len(val),
        len(val),
        cfg.train.seed,
        encoder,
    )
    result, features, rows = evaluate_run(
        cfg, modality, splits.protocol, enc, part, val, None, device=device
    )
    lines = result.format().splitlines()
    if splits.protocol == "classification":
        lines.append(_knn_choice_line(result, cfg.eval.knn_select_k, cfg.train.knn_k, "texts"))
    lines.append(
        f"evaluated on {len(val)} texts held out of {splits.name} (data.val_size "
        f"{cfg.data.val_size:g}, seed {cfg.train.seed}): text files have no test split."
    )
    out: dict[str, Any] = {**result.to_dict(), "summary": lines}
    if report_path is not None:
        title = f"contrastkit evaluation of {encoder} on {splits.name}"
        _write_report(report_path, title, lines, modality, features, rows)
        out["report"] = str(report_path)
    return out


def _write_report(
    path: Path,
    title: str,
    lines: list[str],
    modality: Any,
    features: Any,
    rows: Any,
    confusion: tuple[Any, str] | None = None,
) -> None:
    """The evaluation's HTML report: its summary lines as the metrics table, the maps and
    neighbours of the evaluated rows, and ``confusion`` (the matrix, the classifier in words)."""
    import numpy as np

    from contrastkit.evaluate.report import write_report

    _log.info("writing the report to %s", path)
    write_report(
        path,
        title=title,
        metrics=dict(line.split(": ", 1) for line in lines if ": " in line),
        features=features,
        labels=getattr(rows, "labels", None),
        classes=getattr(rows, "classes", None),
        confusion=None if confusion is None else np.asarray(confusion[0]),
        confusion_title=None if confusion is None else confusion[1],
        **modality.report_rows(rows),
    )


def _knn_choice_line(
    result: Any, grid: tuple[int, ...], fixed_k: int, rows_word: str = "images"
) -> str:
    """Which k the kNN used and why, in words: the grid's best on the validation images, or
    the fixed k; the k dropped for being above a fifth of the bank."""
    d = result.details
    accs = d.get("val_knn_accuracy_by_k", {})
    if grid:
        why = (
            f"the best of {', '.join(map(str, d['k_grid']))} on {d['n_val']} validation "
            f"{rows_word} (accuracy {accs.get(str(d['k']), float('nan')):.3f})"
        )
    elif d.get("k_dropped"):
        return (
            f"kNN k: {d['k']}, the fixed k (--knn-k {fixed_k}) lowered to a fifth of the "
            f"{d['n_train']} training {rows_word} it votes from"
        )
    else:
        why = f"fixed (--knn-k {fixed_k})"
    if d.get("k_dropped"):
        why += (
            f"; {', '.join(map(str, d['k_dropped']))} left out: k is at most "
            f"{d['k_cap']}, a fifth of the {d['n_train']} training {rows_word} it votes from"
        )
    base = d.get("baseline", {}).get("k")
    tail = f" ({result.baseline_name}: k={base})" if base is not None else ""
    return f"kNN k: {d['k']}, {why}{tail}"


def _image_encoder(encoder_dir: str | os.PathLike, device: str) -> Any:
    """The exported encoder in ``encoder_dir``, refused (ValueError) when it embeds texts."""
    from contrastkit.train import load_encoder

    enc = load_encoder(encoder_dir, device=device)
    if callable(getattr(enc, "encode", None)):
        raise ValueError(
            f"{encoder_dir} holds a text encoder ({type(enc).__name__}); images need an image "
            "encoder folder, and texts are given as a .txt/.csv/.tsv/.jsonl file."
        )
    return enc


def _output_path(path: str | os.PathLike, suffixes: tuple[str, ...], flag: str) -> Path:
    """``path`` checked before any work: its suffix, not a folder, its folder writable."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise ValueError(f"{flag} must end in {' or '.join(suffixes)}, got {str(path)!r}.")
    if out.is_dir():
        raise ValueError(
            f"{flag} {out} is a folder; give a file path such as {out / 'x'}{suffixes[0]}."
        )
    parent = next((q for q in (out.parent, *out.parent.parents) if q.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write {flag} {out}: {parent} is not a writable folder.")
    return out


def _graph_encoder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds an exported graph encoder (gin, gcn)."""
    meta = Path(folder) / "encoder.json"
    try:
        return json.loads(meta.read_text()).get("encoder") in ("gin", "gcn")
    except (OSError, ValueError, AttributeError):
        return False


def embed_dataset(
    encoder_dir: str | os.PathLike,
    data: str,
    out: str | os.PathLike,
    *,
    split: str | None = None,
    column: str = "text",
    max_length: int = 128,
    device: str = "cpu",
) -> Path:
    """Write embeddings: ``.npy`` (an (N, D) array, with ``<name>.ids.npy`` and, for labelled
    rows, ``<name>.labels.npy`` beside it) or ``.parquet`` (columns id, embedding, label).

    Images: one split (``split``: ``test`` by default, or ``train``) of an image data set,
    embedded by an encoder folder; ids are the image paths of a folder, else row numbers.
    Texts (a built-in text set or a .txt/.csv/.tsv/.jsonl file, a table's texts in
    ``column``): every text, embedded by ``minilm``, a folder written by ``contrastkit train``
    on texts or a Hugging Face folder (``max_length`` tokens); ids are those of
    :func:`contrastkit.app.text.read_texts` (line numbers of a .txt, a table's ``id`` column or
    row numbers). Graphs (an encoder trained by a graph recipe: ``mutag``, ``b3db``, a TU
    folder, a CSV/TSV of SMILES in ``column``, an edge list): every graph (or one part of a
    molecule split with ``split`` train/val/test), or every node of an edge list; ids are the
    SMILES, the graph numbers or the node names. The output path is checked before any work.
    """
    import numpy as np

    from contrastkit.app.text import is_text_data

    out = _output_path(out, (".npy", ".parquet"), "--out")
    if out.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(
                "writing .parquet needs pyarrow: pip install 'contrastkit[parquet]' (or "
                "pip install pyarrow), or write .npy instead."
            ) from None
    if _graph_encoder(encoder_dir):
        from contrastkit.app.graph import embed_graph_data

        feats, ids, labels = embed_graph_data(
            encoder_dir, data, split=split, smiles_column=column, device=device
        )
    elif is_text_data(data):
        from contrastkit.app.text import load_text_encoder, read_texts

        if split is not None:
            raise ValueError(
                f"--split is for image data; {data} is text and is embedded whole (every "
                "line of a .txt, every row of a table): drop --split."
            )
        texts, ids = read_texts(data, column)
        enc = load_text_encoder(str(encoder_dir), max_length)
        _log.info("embedding %d texts of %s with %s", len(texts), data, encoder_dir)
        feats = enc.encode(list(texts.texts), batch_size=128).float().numpy()
        ids = np.array(ids)
        labels = None if texts.labels is None else texts.labels.numpy()
    else:
        split = "test" if split is None else split
        if split not in ("train", "test"):
            raise ValueError(f"--split must be train or test, got {split!r}.")
        splits = load_dataset(data)
        part = splits.train if split == "train" else splits.test
        if part is None:
            raise ValueError(
                f"{data} has no 'test' split (its images hold no labelled test part); embed "
                "its images with --split train."
            )
        enc = _image_encoder(encoder_dir, device)
        _log.info("embedding %d %s images of %s with %s", len(part), split, data, encoder_dir)
        feats = extract_features(enc, part.images, device=device).numpy()
        ids = np.arange(len(part)) if part.paths is None else np.array(part.paths)
        labels = None if part.labels is None else part.labels.numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        cols = {"id": ids, "embedding": list(feats)}
        if labels is not None:
            cols["label"] = labels
        pq.write_table(pa.table(cols), out)
    else:
        np.save(out, feats)
        np.save(out.with_suffix(".ids.npy"), ids)
        if labels is not None:
            np.save(out.with_suffix(".labels.npy"), labels)
    return out
