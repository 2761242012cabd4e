"""A fixed-size FIFO of embeddings with their ids: MoCo's queue, a memory bank, NNCLR's support set.

Every row is stored with an integer id (a data-set index for instance discrimination, a class
label for supervised contrast), so that a loss can tell a queued copy of the query's own
instance or class from a true negative: :meth:`FeatureQueue.negatives` hands ``negatives`` +
``negative_ids`` to :func:`~contrastkit.losses.info_nce` (a matching copy is then removed from
that row's candidates), and :meth:`FeatureQueue.extend_keys` appends the queue to the keys so
that a matching copy is a *positive* instead. Either way it is never silently a false negative.

Under torch.distributed, :meth:`FeatureQueue.push` with ``gather=True`` enqueues every rank's
rows (detached, rank order), so the queue is the same global queue on every process.

Example:
    >>> import torch
    >>> from contrastkit.losses import info_nce
    >>> from contrastkit.memory import FeatureQueue
    >>> queue = FeatureQueue(size=1024, dim=16)
    >>> q, k, idx = torch.randn(8, 16), torch.randn(8, 16), torch.arange(8)
    >>> loss = info_nce(q, k, query_ids=idx, key_ids=idx, **queue.negatives())
    >>> queue.push(k, idx)               # after the loss: the current keys join the queue
    >>> len(queue)
    8
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed as dist
from contrastkit.neighbours import topk_similar

__all__ = ["FeatureQueue"]


class FeatureQueue(nn.Module):
    """FIFO of ``size`` embeddings of dimension ``dim`` with integer ids (all buffers, so the
    queue is saved in checkpoints and a resumed run continues with the same negatives).

    Args:
        size: capacity K (rows); the oldest rows are overwritten first.
        dim: embedding dimension D.
        dtype: storage dtype (float32; bfloat16 halves the memory of a large queue).
        normalize: L2-normalise rows as they are pushed (what cosine losses see anyway).

    Rows pushed without ids get unique negative ids (−1, −2, …), which never equal a data-set
    index or a class label, so they are always negatives.
    """

    features: Tensor
    ids: Tensor
    ptr: Tensor
    count: Tensor
    next_anonymous: Tensor

    def __init__(
        self,
        size: int,
        dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if int(size) < 1 or int(dim) < 1:
            raise ValueError(
                f"FeatureQueue needs size ≥ 1 and dim ≥ 1, got size={size}, dim={dim}."
            )
        self.size, self.dim, self.normalize = int(size), int(dim), bool(normalize)
        self.register_buffer("features", torch.zeros(self.size, self.dim, dtype=dtype))
        self.register_buffer("ids", torch.full((self.size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("next_anonymous", torch.ones((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.count)

    @property
    def is_full(self) -> bool:
        return len(self) == self.size

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, filled={len(self)}"

    @torch.no_grad()
    def push(
        self,
        features: Tensor,
        ids: Tensor | None = None,
        *,
        gather: bool = False,
        offset_ids: bool = False,
    ) -> None:
        """Enqueue (B, D) ``features`` (detached) with their (B,) integer ``ids``.

        Args:
            gather: under torch.distributed, enqueue every rank's rows in rank order (the same
                global queue on every process). No effect outside a process group.
            offset_ids: with ``gather``, the ids are per-rank instance numbers (``arange(B)``
                on each rank): shift them by rank so they stay distinct. Leave False for
                data-set indices and class labels, which are global already.
        """
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise ValueError(
                f"features must be (B, {self.dim}) to match the queue, got shape "
                f"{tuple(features.shape)}; project to dim={self.dim} first."
            )
        if not torch.isfinite(features).all():
            raise ValueError("features contain NaN or inf; a queue must not store them.")
        b = features.shape[0]
        if ids is None:
            start = int(self.next_anonymous)
            ids = -torch.arange(start, start + b, device=self.ids.device)
            self.next_anonymous += b
        elif ids.shape != (b,) or torch.is_floating_point(ids):
            raise ValueError(
                f"ids must be a ({b},) integer tensor matching features' rows, got "
                f"{tuple(ids.shape)} {ids.dtype}."
            )
        features = features.detach()
        if gather and dist.is_distributed():
            sizes = dist.row_sizes(b, features.device)
            features = dist.all_gather(features, sizes=sizes)
            ids = dist.gather_ids(ids, offset=offset_ids, sizes=sizes)
        if self.normalize:
            features = F.normalize(features.float(), dim=1)
        features = features[-self.size :].to(self.features.dtype)
        ids = ids[-self.size :].to(self.ids.device, torch.long)
        n, p = features.shape[0], int(self.ptr)
        first = min(n, self.size - p)
        self.features[p : p + first] = features[:first]
        self.ids[p : p + first] = ids[:first]
        if n > first:  # wrap around
            self.features[: n - first] = features[first:]
            self.ids[: n - first] = ids[first:]
        self.ptr.fill_((p + n) % self.size)
        self.count.fill_(min(self.size, int(self.count) + n))

    def get(self) -> tuple[Tensor, Tensor]:
        """The filled rows: ((K', D) features, (K',) ids), K' = ``len(self)`` ≤ size.

        A snapshot (copies): a loss may keep them for its backward pass while this step's
        keys are pushed, so they must not change under it."""
        n = len(self)
        return self.features[:n].clone(), self.ids[:n].clone()

    def negatives(self, dtype: torch.dtype | None = None) -> dict[str, Tensor | None]:
        """``{"negatives": ..., "negative_ids": ...}`` for :func:`~contrastkit.losses.info_nce`:
        a queued copy with the query's id is left out of that query's candidates. An empty
        queue gives ``None`` for both (no extra negatives)."""
        if len(self) == 0:
            return {"negatives": None, "negative_ids": None}
        f, ids = self.get()
        return {"negatives": f if dtype is None else f.to(dtype), "negative_ids": ids}

    def extend_keys(self, key: Tensor, key_ids: Tensor) -> tuple[Tensor, Tensor]:
        """``(cat(key, queue), cat(key_ids, queue ids))``: queued rows sharing a query's id
        become positives of that query (supervised contrast with a memory, e.g. MoCo-SupCon)."""
        f, ids = self.get()
        return torch.cat([key, f.to(key.dtype)]), torch.cat([key_ids, ids])

    @torch.no_grad()
    def nearest(self, query: Tensor) -> Tensor:
        """For each (B, D) query row, the queued row of highest cosine similarity (NNCLR's
        support-set lookup); (B, D), detached. The queue must not be empty."""
        if len(self) == 0:
            raise ValueError("the queue is empty; push rows before looking up neighbours.")
        f, _ = self.get()
        _, idx = topk_similar(query, f, 1)  # exact, ties to the earlier row
        return f[idx[:, 0]].to(query.dtype)

    @torch.no_grad()
    def reset(self) -> None:
        """Empty the queue."""
        self.features.zero_()
        self.ids.fill_(-1)
        self.ptr.zero_()
        self.count.zero_()
        self.next_anonymous.fill_(1)
