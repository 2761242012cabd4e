"""An embedding index: exact (brute-force matmul) or HNSW (usearch) cosine search, saved safely.

:class:`EmbeddingIndex` stores L2-normalised float32 rows with an id and an optional text per
row, and answers top-k cosine-similarity queries with one of two backends:

- ``"exact"``: the rows as one float32 matrix; queries are scored by matrix products in blocks
  (memory O(block)) and ranked by :func:`contrastkit.neighbours.topk_similar` (equal scores
  in row order). Exact, and fast up to ~10⁵ rows.
- ``"usearch"``: an HNSW graph (``usearch.index.Index``, metric ``cos``, f32 by default) built
  next to the matrix. Approximate (recall < 1), sub-linear per query; the returned scores are
  recomputed exactly from the stored rows, so both backends report the same cosine.
- ``"auto"`` (default): exact while the index holds fewer than 50,000 rows, usearch from then on
  (the graph is built once when the threshold is crossed).

``save(folder)`` writes the rows as safetensors, the ids/texts/meta as JSON and the graph (if
any) in usearch's own format; every file is written atomically under a fresh name and the JSON
(written last) names the files of the save it belongs to, so a crash mid-save leaves the
previous save loadable. Nothing is ever unpickled.

Example:
    >>> import tempfile, torch
    >>> from contrastkit.index import EmbeddingIndex
    >>> index = EmbeddingIndex(dim=2, backend="exact")
    >>> index.add(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), ids=["x", "y", "xy"])
    >>> hits = index.search(torch.tensor([1.0, 0.2]), k=2)[0]
    >>> [(hit.rank, hit.id, round(hit.score, 3)) for hit in hits]
    [(1, 'x', 0.981), (2, 'xy', 0.832)]
    >>> folder = tempfile.mkdtemp()
    >>> index.save(folder)
    >>> len(EmbeddingIndex.load(folder))
    3
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_choice
from contrastkit._io import atomic_write, atomic_write_bytes, file_sha256
from contrastkit.neighbours import topk_similar

__all__ = ["AUTO_EXACT_MAX_ROWS", "EmbeddingIndex", "SearchHit", "usearch_available"]

#: ``backend="auto"`` searches exactly below this many rows and builds a usearch graph above
AUTO_EXACT_MAX_ROWS = 50_000

_FORMAT = "contrastkit.embedding_index"
_VERSION = 1
_META_FILE = "index.json"
_OWN_FILE = re.compile(r"^(embeddings-[0-9a-f]{16}\.safetensors|usearch-[0-9a-f]{16}\.usearch)$")
_BACKENDS = ("auto", "exact", "usearch")
_METRICS = ("cos",)
_SCORE_BLOCK = 1 << 24  # similarity entries scored at a time by the exact backend (64 MiB)


@dataclass(frozen=True)
class SearchHit:
    """One search result.

    Attributes:
        rank: 1 for the closest row, 2 for the next, ...
        index: the row of the index (0-based, in the order rows were added).
        id: the row's id (its row number as a string unless ids were given).
        score: cosine similarity to the query, in [-1, 1]; higher is closer.
        text: the row's text, or None when none was given.
    """

    rank: int
    index: int
    id: str
    score: float
    text: str | None = None


def usearch_available() -> bool:
    """Whether the optional ``usearch`` package can be imported."""
    return importlib.util.find_spec("usearch") is not None


def _usearch_index_class():
    try:
        from usearch.index import Index
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='usearch' needs the usearch package: install it with `pip install usearch`, "
            "or use backend='exact'."
        ) from err
    return Index


def _record_sha256(record: dict[str, Any]) -> str:
    """SHA-256 of an index record's canonical JSON, less its own ``sha256`` key."""
    body = {k: v for k, v in record.items() if k != "sha256"}
    canon = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def _damaged(path: Path, why: str) -> ValueError:
    """The one-line error for a damaged index file."""
    return ValueError(
        f"{path}: the index file is damaged ({why}); build the index again (contrastkit index ...)."
    )


def _check_json(meta: dict[str, Any] | None) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict of JSON values, got {type(meta).__name__}.")
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"meta must hold only JSON values (str, numbers, lists, dicts) because it is saved "
            f"as JSON ({err}); store a path or a name instead of the object, e.g. "
            f'{{"encoder": "runs/simcse/encoder"}}.'
        ) from err
    return dict(meta)


class EmbeddingIndex:
    """Cosine-similarity index over embeddings, with ids, optional texts and a metadata dict.

    Args:
        dim: embedding dimension D.
        metric: ``"cos"`` (cosine similarity; rows and queries are L2-normalised).
        backend: ``"exact"``, ``"usearch"`` or ``"auto"`` (exact below ``auto_threshold`` rows,
            usearch from then on; stays exact with a warning if usearch is not installed).
        meta: JSON-able dict saved with the index, e.g. ``{"encoder": "path/to/encoder"}``.
        dtype: usearch storage type (``"f32"``, ``"f16"``, ``"i8"``, ...).
        connectivity, expansion_add, expansion_search: usearch's HNSW M, efConstruction and
            ef (None: usearch's defaults 16, 128, 64). Raise ``expansion_search`` for recall.
        auto_threshold: the row count at which ``"auto"`` switches to usearch.
        threads: usearch worker threads for adding and searching (0: all cores). A run-time
            setting, not saved; the exact backend follows ``torch.set_num_threads``.

    Example:
        >>> import torch
        >>> index = EmbeddingIndex(4, backend="exact", meta={"encoder": "runs/simcse"})
        >>> index.add(torch.eye(4), texts=["a", "b", "c", "d"])
        >>> hit = index.search(torch.tensor([0.0, 0.0, 1.0, 0.1]), k=1)[0][0]
        >>> hit.index, hit.id, hit.text, len(index), index.backend
        (2, '2', 'c', 4, 'exact')
    """

    def __init__(
        self,
        dim: int,
        metric: str = "cos",
        backend: str = "auto",
        *,
        meta: dict[str, Any] | None = None,
        dtype: str = "f32",
        connectivity: int | None = None,
        expansion_add: int | None = None,
        expansion_search: int | None = None,
        auto_threshold: int = AUTO_EXACT_MAX_ROWS,
        threads: int = 0,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer (the embedding size), got {dim!r}.")
        check_choice(metric, "metric", _METRICS)
        check_choice(backend, "backend", _BACKENDS)
        if backend == "usearch":
            _usearch_index_class()  # fail now, not at the first add
        self.dim = dim
        self.metric = metric
        self.requested_backend = backend
        self.meta = _check_json(meta)
        self.usearch_options: dict[str, Any] = {
            "dtype": dtype,
            "connectivity": connectivity,
            "expansion_add": expansion_add,
            "expansion_search": expansion_search,
        }
        self.auto_threshold = int(auto_threshold)
        self.threads = int(threads)
        self._chunks: list[Tensor] = []
        self._n = 0
        self._ids: list[str] = []
        self._texts: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._graph = None
        self._warned_no_usearch = False

    # ----------------------------------------------------------------- contents
    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (
            f"EmbeddingIndex(dim={self.dim}, rows={self._n}, metric={self.metric!r}, "
            f"backend={self.backend!r})"
        )

    @property
    def backend(self) -> str:
        """The backend in use now: ``"exact"`` or ``"usearch"``."""
        return "usearch" if self._graph is not None else "exact"

    @property
    def embeddings(self) -> Tensor:
        """The stored rows (N, D), L2-normalised float32 (do not modify in place)."""
        if len(self._chunks) > 1:  # appended blocks are joined on first use
            self._chunks = [torch.cat(self._chunks)]
        return self._chunks[0] if self._chunks else torch.zeros(0, self.dim)

    @property
    def ids(self) -> list[str]:
        """Row ids, in row order (a copy)."""
        return list(self._ids)

    @property
    def texts(self) -> list[str | None]:
        """Row texts (None where none was given), in row order (a copy)."""
        return list(self._texts)

    def row_of(self, id: str) -> int:
        """The row index of ``id``."""
        try:
            return self._row_of[id]
        except KeyError:
            raise KeyError(f"id {id!r} is not in the index ({self._n} rows).") from None

    # ---------------------------------------------------------------- adding
    def _prepare(self, x: Tensor, name: str) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor of shape (N, {self.dim}), got "
                f"{type(x).__name__}; convert it with torch.as_tensor({name})."
            )
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"{name} must have shape (N, {self.dim}) or ({self.dim},) for this index of "
                f"dimension {self.dim}, got {tuple(x.shape)}; embed with the same encoder that "
                f"built the index."
            )
        if not torch.is_floating_point(x):
            raise TypeError(f"{name} must be floating point, got {x.dtype}; use {name}.float().")
        x = x.detach().to("cpu", torch.float32)
        if not bool(torch.isfinite(x).all()):
            bad = (~torch.isfinite(x)).any(1).nonzero().flatten()[:5].tolist()
            raise ValueError(
                f"{name} has NaN or infinite values in rows {bad}...; the encoder diverged or its "
                f"input was bad. Fix or drop those rows."
            )
        zero = x.norm(dim=1) == 0
        if bool(zero.any()):
            raise ValueError(
                f"{name} has all-zero rows {zero.nonzero().flatten()[:5].tolist()}...; cosine "
                f"similarity is undefined for them. Drop those rows (e.g. empty texts)."
            )
        return F.normalize(x, dim=1)

    def add(
        self,
        embeddings: Tensor,
        ids: list[str] | None = None,
        texts: list[str] | None = None,
    ) -> None:
        """Append rows to the index (row indices continue from ``len(index)``).

        Args:
            embeddings: (N, D) (or (D,) for one row); stored L2-normalised as float32.
            ids: N unique strings (default: the row numbers as strings).
            texts: N texts shown in the search hits (optional).
        """
        z = self._prepare(embeddings, "embeddings")
        n = z.shape[0]
        start = self._n
        if ids is None:
            new_ids = [str(start + i) for i in range(n)]
        else:
            new_ids = list(ids)
            if len(new_ids) != n or not all(isinstance(i, str) for i in new_ids):
                raise ValueError(
                    f"ids must be a list of {n} strings, one per row of embeddings, got "
                    f"{len(new_ids)} item(s); convert numbers with [str(i) for i in ids]."
                )
        seen: dict[str, int] = {}
        for offset, i in enumerate(new_ids):
            if i in self._row_of or i in seen:
                first = self._row_of.get(i, seen.get(i))
                raise ValueError(
                    f"id {i!r} is given twice (rows {first} and {start + offset}); ids must be "
                    f"unique: give distinct ids or leave ids=None to number the rows."
                )
            seen[i] = start + offset
        if texts is not None:
            texts = list(texts)
            if len(texts) != n or not all(t is None or isinstance(t, str) for t in texts):
                raise ValueError(
                    f"texts must be a list of {n} strings (or None), one per row of embeddings, "
                    f"got {len(texts)} item(s)."
                )
        if n == 0:
            return
        self._chunks.append(z)
        self._n += n
        self._ids.extend(new_ids)
        self._row_of.update(seen)
        self._texts.extend(texts if texts is not None else [None] * n)
        if self._graph is not None:
            self._graph_add(z, start)
        elif self._wants_graph():
            self._build_graph()

    # ---------------------------------------------------------------- usearch graph
    def _wants_graph(self) -> bool:
        if self.requested_backend == "usearch":
            return self._n > 0
        if self.requested_backend == "auto" and self._n >= self.auto_threshold:
            if usearch_available():
                return True
            if not self._warned_no_usearch:
                warnings.warn(
                    f"the index holds {self._n} rows, above auto_threshold={self.auto_threshold}, "
                    f"but usearch is not installed, so it keeps searching exactly (slower). "
                    f"Install usearch (`pip install usearch`) for approximate search.",
                    stacklevel=3,
                )
                self._warned_no_usearch = True
        return False

    def _new_graph(self):
        index_cls = _usearch_index_class()
        return index_cls(ndim=self.dim, metric=self.metric, **self.usearch_options)

    def _graph_add(self, z: Tensor, start: int) -> None:
        keys = np.arange(start, start + z.shape[0], dtype=np.uint64)
        self._graph.add(keys, np.ascontiguousarray(z.numpy()), threads=self.threads)

    def _build_graph(self) -> None:
        self._graph = self._new_graph()
        if self._n:
            self._graph_add(self.embeddings, 0)

    # ---------------------------------------------------------------- search
    def search_topk(
        self, queries: Tensor, k: int = 10, *, exact: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Top-k rows for each query, as tensors.

        Args:
            queries: (Q, D) or (D,).
            k: hits per query (capped at the number of rows).
            exact: search by brute force even when a usearch graph exists.

        Returns:
            ``(scores, indices)``, each (Q, min(k, N)), best first: cosine similarities
            (float32) and row indices (int64). Where the approximate backend returns fewer
            hits, the rest are padded with score -inf and index -1.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer ≥ 1, got {k!r}.")
        if self._n == 0:
            raise ValueError("the index is empty; add embeddings with index.add(...) first.")
        q = self._prepare(queries, "queries")
        k = min(k, self._n)
        e = self.embeddings
        if self._graph is None or exact:
            # rows and queries are normalised already: cosine is their dot product
            block = max(1, _SCORE_BLOCK // self._n)  # similarity entries of one matmul
            return topk_similar(q, e, k, metric="dot", chunk_size=block)
        block = max(1, _SCORE_BLOCK // (k * self.dim))  # rows gathered to rescore the hits
        parts = [self._search_graph(q[s : s + block], e, k) for s in range(0, q.shape[0], block)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _search_graph(self, q: Tensor, e: Tensor, k: int) -> tuple[Tensor, Tensor]:
        found = self._graph.search(np.ascontiguousarray(q.numpy()), count=k, threads=self.threads)
        if q.shape[0] == 1:  # usearch returns Matches (1-D) for a single query
            keys = np.full((1, k), -1, dtype=np.int64)
            got = np.asarray(found.keys, dtype=np.int64)[:k]
            keys[0, : len(got)] = got
        else:
            keys = np.asarray(found.keys).astype(np.int64)
            counts = np.asarray(found.counts)
            keys[np.arange(k)[None, :] >= counts[:, None]] = -1
        idx = torch.from_numpy(keys)
        valid = idx >= 0
        rows = e[idx.clamp_min(0)]  # (Q, k, D)
        score = torch.einsum("qkd,qd->qk", rows, q)  # exact cosine of the returned rows
        score = torch.where(valid, score, torch.tensor(-float("inf")))
        order = score.argsort(dim=1, descending=True, stable=True)
        return score.gather(1, order), torch.where(valid, idx, -1).gather(1, order)

    def search(self, queries: Tensor, k: int = 10, *, exact: bool = False) -> list[list[SearchHit]]:
        """The ``k`` closest rows of each query by cosine similarity.

        Args:
            queries: (Q, D), or (D,) for one query (the result is then a list of one list).
            k: hits per query (capped at the number of rows).
            exact: search by brute force even when a usearch graph exists.

        Returns:
            One list of :class:`SearchHit` per query, closest first.
        """
        scores, indices = self.search_topk(queries, k, exact=exact)
        out = []
        for s_row, i_row in zip(scores.tolist(), indices.tolist()):
            out.append(
                [
                    SearchHit(rank, i, self._ids[i], s, self._texts[i])
                    for rank, (s, i) in enumerate(zip(s_row, i_row), start=1)
                    if i >= 0
                ]
            )
        return out

    # ---------------------------------------------------------------- files
    def save(self, folder: str | os.PathLike) -> None:
        """Save to ``folder`` (created if needed): ``index.json`` (ids, texts, meta, settings),
        ``embeddings-<token>.safetensors`` and, with the usearch backend,
        ``usearch-<token>.usearch``. Files of earlier saves in the folder are removed once the
        new ``index.json`` is in place."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        emb_name = f"embeddings-{token}.safetensors"
        tensors = {"embeddings": self.embeddings.contiguous()}
        atomic_write(folder / emb_name, lambda tmp: save_file(tensors, tmp))
        graph_name = None
        if self._graph is not None:
            graph_name = f"usearch-{token}.usearch"
            atomic_write(folder / graph_name, lambda tmp: self._graph.save(tmp))
        record = {
            "format": _FORMAT,
            "version": _VERSION,
            "dim": self.dim,
            "metric": self.metric,
            "backend": self.requested_backend,
            "active_backend": self.backend,
            "count": self._n,
            "auto_threshold": self.auto_threshold,
            "usearch": self.usearch_options,
            "embeddings_file": emb_name,
            "graph_file": graph_name,
            "meta": self.meta,
            "ids": self._ids,
            "texts": self._texts,
            # checksums of every file, verified on load: bit rot fails loudly
            "embeddings_sha256": file_sha256(folder / emb_name),
            "graph_sha256": None if graph_name is None else file_sha256(folder / graph_name),
        }
        record["sha256"] = _record_sha256(record)
        data = json.dumps(record, ensure_ascii=False).encode()
        atomic_write_bytes(folder / _META_FILE, data)
        for path in folder.iterdir():
            if _OWN_FILE.match(path.name) and path.name not in {emb_name, graph_name}:
                path.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: str | os.PathLike, backend: str | None = None) -> EmbeddingIndex:
        """Load an index written by :meth:`save`.

        Args:
            folder: the folder given to :meth:`save`.
            backend: override the saved backend choice (e.g. ``"exact"`` to skip the graph).
                A usearch graph whose file is missing or unreadable is rebuilt from the
                embeddings, with a warning.
        """
        from safetensors.torch import load_file

        folder = Path(folder)
        meta_path = folder / _META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path} not found: {folder} is not a saved EmbeddingIndex; save one with "
                f"EmbeddingIndex.save(folder)."
            )
        try:
            record = json.loads(meta_path.read_text())
        except (UnicodeDecodeError, ValueError):
            raise _damaged(meta_path, "it is not valid JSON") from None
        if not isinstance(record, dict):
            raise _damaged(meta_path, "it is not an index record")
        if "sha256" in record and _record_sha256(record) != record["sha256"]:
            raise _damaged(meta_path, "its sha256 checksum does not match its contents")
        if record.get("format") != _FORMAT or record.get("version") != _VERSION:
            raise ValueError(
                f"{meta_path} is not an EmbeddingIndex file of version {_VERSION} (format "
                f"{record.get('format')!r}, version {record.get('version')!r}); save the index "
                f"again with this version of contrastkit."
            )
        index = cls(
            record["dim"],
            record["metric"],
            backend if backend is not None else record["backend"],
            meta=record["meta"],
            auto_threshold=record["auto_threshold"],
            **record["usearch"],
        )
        emb_path = folder / record["embeddings_file"]
        if not emb_path.is_file():
            raise FileNotFoundError(
                f"{emb_path} (named by {meta_path}) is missing; the folder was changed after "
                f"saving. Save the index again."
            )
        want = record.get("embeddings_sha256")
        if want is not None and file_sha256(emb_path) != want:
            raise _damaged(emb_path, "its sha256 checksum does not match index.json")
        try:
            emb = load_file(emb_path)["embeddings"]
        except Exception as err:  # safetensors raises its own error type on a corrupt file
            raise _damaged(emb_path, f"safetensors cannot read it: {err}") from None
        count, dim = record["count"], record["dim"]
        ids, texts = record["ids"], record["texts"]
        if tuple(emb.shape) != (count, dim) or len(ids) != count or len(texts) != count:
            raise ValueError(
                f"{folder} is inconsistent: {meta_path.name} says {count} rows of dimension "
                f"{dim} but the embeddings are {tuple(emb.shape)} with {len(ids)} ids and "
                f"{len(texts)} texts. Save the index again."
            )
        if count:
            index._chunks = [emb.float().contiguous()]
        index._n = count
        index._ids = list(ids)
        index._texts = list(texts)
        index._row_of = {i: r for r, i in enumerate(ids)}
        if index._wants_graph():
            graph_file, want = record.get("graph_file"), record.get("graph_sha256")
            path = folder / graph_file if graph_file else None
            if path is not None and want is not None and path.is_file():
                if file_sha256(path) != want:  # rebuilt from the verified embeddings
                    warnings.warn(
                        f"the usearch graph {path} does not match its checksum in index.json; "
                        "rebuilding it from the saved embeddings (save the index again to "
                        "store the rebuilt graph).",
                        stacklevel=2,
                    )
                    graph_file = None
            index._load_graph(folder, graph_file)
        return index

    def _load_graph(self, folder: Path, graph_file: str | None) -> None:
        if graph_file is None:
            # saved while exact (or loaded with another backend): nothing on disk to reuse
            self._build_graph()
            return
        path = folder / graph_file
        reason = "is missing"
        if path.is_file():
            graph = self._new_graph()
            try:
                graph.load(str(path))
            except Exception as err:  # usearch raises RuntimeError/ValueError on bad files
                reason = f"could not be read ({err})"
            else:
                if len(graph) == self._n and graph.ndim == self.dim:
                    self._graph = graph
                    return
                reason = f"holds {len(graph)} vectors of dimension {graph.ndim}"
        warnings.warn(
            f"the usearch graph {path} {reason}; rebuilding it from the {self._n} saved "
            f"embeddings (save the index again to store the rebuilt graph).",
            stacklevel=3,
        )
        self._build_graph()
