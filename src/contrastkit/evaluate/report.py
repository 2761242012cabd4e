"""A single self-contained HTML report: metrics, training curves, embedding maps, neighbours.

Pictures are PNGs rendered with matplotlib (Agg) and embedded as base64, so the file opens in
any browser with nothing beside it. Embedding maps use t-SNE (scikit-learn) and UMAP
(umap-learn) on a class-stratified sample of points.

Example:
    >>> import tempfile, torch
    >>> from contrastkit.evaluate.report import write_report
    >>> feats, labels = torch.randn(60, 8), torch.arange(60) % 3
    >>> imgs = torch.randint(0, 256, (60, 1, 8, 8), dtype=torch.uint8)
    >>> path = write_report(tempfile.mkdtemp() + "/report.html", metrics={"knn_acc": 0.5},
    ...                     history=[{"epoch": 1, "loss": 3.0}], features=feats, labels=labels,
    ...                     images=imgs, maps=("tsne",))
    >>> path.exists()
    True
"""

from __future__ import annotations

import base64
import html
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._io import atomic_write_bytes
from contrastkit.neighbours import topk_similar

__all__ = [
    "embedding_map",
    "metric_rows",
    "plot_confusion",
    "plot_embedding",
    "plot_label_fraction_curves",
    "plot_neighbours",
    "plot_training_curves",
    "write_report",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


#: the logged columns the report plots, with their titles in words
CURVE_TITLES = {
    "loss": "training loss",
    "knn_acc": "kNN accuracy\n(validation, online monitor)",
    "emb_std_ratio": "embedding spread, std·√dim\n(≈1 healthy, →0 collapsed)",
    "lr": "learning rate",
}


def plot_training_curves(history: Sequence[dict[str, float]]) -> bytes:
    """Loss and (when logged) kNN accuracy and embedding spread per epoch, as PNG bytes."""
    plt = _plt()
    keys = [k for k in CURVE_TITLES if any(k in h for h in history)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [(h["epoch"], h[key]) for h in history if key in h]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3)
        ax.set_title(CURVE_TITLES[key], fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return _png(fig)


def _sample(labels: Tensor | None, n: int, max_points: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if n <= max_points:
        return np.arange(n)
    if labels is None:
        return np.sort(rng.choice(n, max_points, replace=False))
    lab = np.asarray(labels)
    idx = []
    classes = np.unique(lab)
    per = max(1, max_points // len(classes))
    for c in classes:
        members = np.flatnonzero(lab == c)
        idx.append(rng.choice(members, min(per, len(members)), replace=False))
    return np.sort(np.concatenate(idx))


#: the embedding maps' names in words
MAP_NAMES = {"tsne": "t-SNE", "umap": "UMAP"}

#: the fewest embeddings a t-SNE or UMAP map is drawn for
MIN_MAP_POINTS = 10


def embedding_map(features: Tensor, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """2-D coordinates (N, 2) of L2-normalised features by t-SNE or UMAP (cosine metric)."""
    x = F.normalize(features.float(), dim=1).numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(1, (len(x) - 1) // 3)))  # must stay below N
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    if method == "umap":
        import umap

        with warnings.catch_warnings():  # a seeded UMAP runs on one thread, as intended
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            return umap.UMAP(
                n_components=2,
                metric="cosine",
                n_neighbors=min(15, len(x) - 1),
                random_state=seed,
            ).fit_transform(x)
    raise ValueError(f"method must be 'tsne' or 'umap', got {method!r}.")


def plot_embedding(
    coords: np.ndarray, labels: Tensor | None, classes: Sequence[str] | None, title: str
) -> bytes:
    """Scatter plot of 2-D coordinates coloured by class, as PNG bytes."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 5.2))
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=4, alpha=0.6)
    else:
        lab = np.asarray(labels)
        cmap = plt.get_cmap("tab10" if lab.max() < 10 else "tab20")
        for c in np.unique(lab):
            m = lab == c
            name = classes[c] if classes and c < len(classes) else str(c)
            ax.scatter(
                coords[m, 0], coords[m, 1], s=4, alpha=0.7, color=cmap(c % cmap.N), label=name
            )
        ax.legend(markerscale=3, fontsize=7, loc="best", frameon=False)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)


def plot_neighbours(
    images: Tensor,
    features: Tensor,
    labels: Tensor | None,
    *,
    n_queries: int = 8,
    k: int = 6,
    seed: int = 0,
) -> bytes:
    """Rows of (query, its k nearest neighbours by cosine similarity); a red frame marks a
    neighbour of another class."""
    plt = _plt()
    g = torch.Generator().manual_seed(seed)
    q_idx = torch.randperm(len(images), generator=g)[:n_queries]
    k = min(k, len(images) - 1)  # a query is never its own neighbour
    z = features.float()
    nn_idx = topk_similar(z[q_idx], z, k, exclude=q_idx)[1]
    fig, axes = plt.subplots(len(q_idx), k + 1, figsize=(1.1 * (k + 1), 1.15 * len(q_idx)))
    axes = np.atleast_2d(axes)
    for r, qi in enumerate(q_idx.tolist()):
        for c, idx in enumerate([qi, *nn_idx[r].tolist()]):
            ax = axes[r, c]
            img = images[idx].float() / (255.0 if images.dtype == torch.uint8 else 1.0)
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            wrong = labels is not None and c > 0 and int(labels[idx]) != int(labels[qi])
            for spine in ax.spines.values():
                spine.set_edgecolor("red" if wrong else ("black" if c == 0 else "#bbb"))
                spine.set_linewidth(2.5 if wrong or c == 0 else 0.8)
    axes[0, 0].set_title("query", fontsize=8)
    for c in range(1, k + 1):
        axes[0, c].set_title(f"nn {c}", fontsize=8)
    return _png(fig)


def plot_confusion(
    cm: np.ndarray, classes: Sequence[str] | None, title: str | None = None
) -> bytes:
    """Row-normalised confusion matrix (true class × predicted class), as PNG bytes;
    ``title`` names the classifier that made the predictions, e.g. ``"kNN, k=10"``."""
    plt = _plt()
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = list(classes) if classes else [str(i) for i in range(len(cm))]
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(len(cm)):
        for j in range(len(cm)):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    int(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9)
    return _png(fig)


def _img_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _text_neighbours(
    texts: list[str],
    features: Tensor,
    labels: Tensor | None,
    classes: Sequence[str] | None,
    seed: int,
    rows: int = 8,
    k: int = 3,
) -> str:
    """An HTML table: sample texts and their ``k`` nearest texts (cosine), other labels red."""
    z = features.float()
    g = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(texts), generator=g)[: min(rows, len(texts))]
    # not its own neighbour
    top_s, top_i = topk_similar(z[picks], z, min(k, len(texts) - 1), exclude=picks)

    def name(i: int) -> str:
        if labels is None:
            return ""
        y = int(labels[i])
        return f" <small>[{html.escape(str(classes[y]) if classes else str(y))}]</small>"

    out = [
        "<h2>Nearest neighbours</h2><p>Each row: a text and its nearest texts by cosine "
        "similarity; red marks another label.</p><table><tr><th>text</th><th>neighbours</th></tr>"
    ]
    for r, i in enumerate(picks.tolist()):
        cells = []
        for s, j in zip(top_s[r].tolist(), top_i[r].tolist()):
            other = labels is not None and int(labels[j]) != int(labels[i])
            style = ' style="color:#c00"' if other else ""
            cells.append(f"<div{style}>{s:.3f} {html.escape(texts[j])}{name(j)}</div>")
        out.append(f"<tr><td>{html.escape(texts[i])}{name(i)}</td><td>{''.join(cells)}</td></tr>")
    return "".join(out) + "</table>"


def _thumb(image: Tensor, size: int = 96, hit: bool | None = None) -> str:
    """An inline PNG ``<img>`` of one uint8 (C, H, W) image; a green frame marks a hit, a grey
    one a miss."""
    from PIL import Image

    arr = image.detach().cpu()
    if arr.dtype != torch.uint8:
        arr = (arr.float().clamp(0, 1) * 255).round().to(torch.uint8)
    pic = Image.fromarray(arr.permute(1, 2, 0).squeeze(-1).numpy())
    pic = pic.resize(
        (size, size),
        Image.Resampling.NEAREST if arr.shape[-1] < size // 2 else Image.Resampling.BILINEAR,
    )
    buf = io.BytesIO()
    pic.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    colour = {True: "#1a7f37", False: "#bbb", None: "#eee"}[hit]
    return (
        f'<img class="thumb" style="border:3px solid {colour};margin:2px;max-width:none" '
        f'width="{size}" height="{size}" src="data:image/png;base64,{data}">'
    )


def _retrieval_grids(grids: dict[str, Any]) -> str:
    """The report's retrieval section: for sample captions their top-5 images, for sample
    images their top-5 captions (the right ones marked green)."""
    out = [
        "<h2>Retrieval: caption → images</h2><p>Each row: a test caption and the 5 test images "
        "closest to it; a green frame marks an image of that caption.</p><table>"
        "<tr><th>caption</th><th>top-5 images</th></tr>"
    ]
    for row in grids.get("text_to_image", []):
        cells = "".join(_thumb(im, hit=h) for im, h in zip(row["images"], row["hits"]))
        out.append(f"<tr><td>{html.escape(row['caption'])}</td><td>{cells}</td></tr>")
    out.append(
        "</table><h2>Retrieval: image → captions</h2><p>Each row: a test image and the 5 test "
        "captions closest to it; its own caption in green.</p><table>"
        "<tr><th>image</th><th>top-5 captions</th></tr>"
    )
    for row in grids.get("image_to_text", []):
        caps = "".join(
            f'<div style="color:{"#1a7f37;font-weight:bold" if h else "#222"}">'
            f"{r + 1}. {html.escape(c)}</div>"
            for r, (c, h) in enumerate(zip(row["captions"], row["hits"]))
        )
        out.append(f"<tr><td>{_thumb(row['image'])}</td><td>{caps}</td></tr>")
    return "".join(out) + "</table>"


def metric_rows(lines: Sequence[str]) -> dict[str, Any]:
    """The report's metrics table from summary lines: ``"name: figures"`` → {name: figures}
    (a line without ``": "`` is left out).

    Example:
        >>> metric_rows(["kNN accuracy, test: 0.912 (chance 0.1)", "no colon here"])
        {'kNN accuracy, test': '0.912 (chance 0.1)'}
    """
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def _table(heading: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table with a heading; floats with 4 digits, everything escaped."""

    def cell(v: Any) -> str:
        return html.escape(f"{v:.4f}" if isinstance(v, float) else str(v))

    head = "".join(f"<th>{cell(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<h2>{html.escape(heading)}</h2><table><tr>{head}</tr>{body}</table>"


def plot_label_fraction_curves(
    curves: dict[str, dict[float, float]], *, title: str = "", ylabel: str = "test accuracy"
) -> bytes:
    """PNG of one line per method: figure against the fraction of training labels used
    (log x axis), e.g. ``{"SCARF + probe": {0.01: 0.71, 0.1: 0.83, 1.0: 0.90}, ...}``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, points in curves.items():
        xs = sorted(points)
        ax.plot([100 * x for x in xs], [points[x] for x in xs], marker="o", label=name)
    ax.set_xscale("log")
    ticks = sorted({x for points in curves.values() for x in points})
    ax.set_xticks([100 * x for x in ticks], [f"{100 * x:g}%" for x in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training labels used")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _png(fig)


def write_report(
    path: str | os.PathLike,
    *,
    title: str = "contrastkit report",
    metrics: dict[str, Any],
    history: Sequence[dict[str, float]] = (),
    features: Tensor | None = None,
    labels: Tensor | None = None,
    images: Tensor | None = None,
    texts: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    confusion: np.ndarray | None = None,
    confusion_title: str | None = None,
    maps: Sequence[str] = ("tsne", "umap"),
    max_points: int = 2000,
    notes: str = "",
    seed: int = 0,
    retrieval_grids: dict[str, Any] | None = None,
    figures: Sequence[tuple[str, bytes]] = (),
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Any]]]] = (),
) -> Path:
    """Write the HTML report; every section is optional except the metrics table.

    Args:
        path: output .html file (written atomically).
        metrics: name → value rows of the table (e.g. test kNN and linear-probe accuracy).
        history: per-epoch rows from the trainer (curves).
        features, labels, images: test-set embeddings, labels and images (maps, neighbours).
        texts: the embedded texts, for text encoders (a table of nearest-neighbour texts).
        classes: class names. confusion: confusion matrix (C, C).
        confusion_title: the classifier whose predictions ``confusion`` counts, e.g.
            ``"kNN (k=10, chosen on the validation split), test split"``; it heads the
            matrix and titles its picture.
        maps: which embedding maps to draw (``tsne``, ``umap``).
        max_points: class-stratified sample size for the maps.
        retrieval_grids: image–text runs: ``{"text_to_image": [{"caption", "images",
            "hits"}], "image_to_text": [{"image", "captions", "hits"}]}`` (top-5 each), shown
            as grids of thumbnails and captions.
        figures: ``(title, PNG bytes)`` pictures shown after the metrics (e.g. label-fraction
            curves from :func:`plot_label_fraction_curves`).
        tables: ``(title, header, rows)`` tables shown after the figures (e.g. Recall@K and
            NDCG@K per model, or a user's recommendations); floats print with 4 digits.
    """
    sections = [
        "<h2>Metrics</h2><table>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in metrics.items()
        )
        + "</table>"
    ]
    if notes:
        sections.append(f"<p>{html.escape(notes)}</p>")
    for heading, png in figures:
        sections.append(f"<h2>{html.escape(heading)}</h2>" + _img_tag(png, heading))
    for heading, header, rows in tables:
        sections.append(_table(heading, header, rows))
    if history:
        sections.append(
            "<h2>Training curves</h2>" + _img_tag(plot_training_curves(history), "curves")
        )
    if features is not None:
        idx = _sample(labels, len(features), max_points, seed)
        sub_labels = None if labels is None else labels[idx]
        pics = []
        if len(idx) < MIN_MAP_POINTS and maps:  # too few points to lay out a map
            sections.append(
                f"<h2>Embedding maps</h2><p>None: {len(idx)} embeddings are too few for a "
                f"map (at least {MIN_MAP_POINTS}).</p>"
            )
            maps = ()
        for method in maps:
            coords = embedding_map(features[idx], method, seed)
            pics.append(
                _img_tag(
                    plot_embedding(
                        coords,
                        sub_labels,
                        classes,
                        f"{MAP_NAMES.get(method, method)} of {len(idx)} test embeddings",
                    ),
                    method,
                )
            )
        if pics:
            sections.append("<h2>Embedding maps</h2>" + "".join(pics))
        if retrieval_grids is not None:
            sections.append(_retrieval_grids(retrieval_grids))
        if images is not None:
            sections.append(
                "<h2>Nearest neighbours</h2><p>Each row: a test image and its nearest test "
                "neighbours by cosine similarity; red frames mark another class.</p>"
                + _img_tag(plot_neighbours(images, features, labels, seed=seed), "neighbours")
            )
        if texts is not None:
            sections.append(_text_neighbours(list(texts), features, labels, classes, seed))
    if confusion is not None:
        heading = "Confusion matrix" + (f": {confusion_title}" if confusion_title else "")
        sections.append(
            f"<h2>{html.escape(heading)}</h2>"
            + _img_tag(plot_confusion(confusion, classes, confusion_title), "confusion")
        )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
img{{max-width:100%;margin:6px 0}}h2{{border-bottom:1px solid #eee;padding-bottom:4px}}</style>
</head><body><h1>{html.escape(title)}</h1>{"".join(sections)}</body></html>"""
    path = Path(path)
    atomic_write_bytes(path, page.encode())
    return path
