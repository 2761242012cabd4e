"""Local–global mutual-information loss (InfoGraph, Deep Graph Infomax): each node (a *local*
summary) is scored against every graph (a *global* summary); the pairs of a node and its own
graph are the positives, every other pair a negative. The Jensen–Shannon estimator of
Hjelm et al. (Deep InfoMax) is the one InfoGraph uses.

References: Sun et al. 2020, "InfoGraph: Unsupervised and Semi-supervised Graph-Level
Representation Learning via Mutual Information Maximization"; Hjelm et al. 2019, "Learning
Deep Representations by Mutual Information Estimation and Maximization".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_embeddings, compute_dtype
from contrastkit.losses._base import LossModule

__all__ = ["LocalGlobalJSDLoss", "local_global_jsd"]

_LOG2 = math.log(2.0)


def _check_options(**_: object) -> None:
    return None


def local_global_jsd(local: Tensor, global_: Tensor, *, local_ids: Tensor) -> Tensor:
    """Minus the Jensen–Shannon mutual-information estimate between nodes and graphs::

        s_ng  = ⟨local_n, global_g⟩
        E_pos = mean over positive pairs (g = local_ids[n]) of  log 2 − softplus(−s_ng)
        E_neg = mean over negative pairs (g ≠ local_ids[n]) of  softplus(−s_ng) + s_ng − log 2
        loss  = E_neg − E_pos

    The loss is 0 when every score is 0 and tends to −2·log 2 when positive scores → +∞ and
    negative scores → −∞. Scores are plain dot products (InfoGraph's), so the embeddings are
    not normalised.

    Args:
        local: (N, D) node embeddings.
        global_: (B, D) graph embeddings.
        local_ids: (N,) int64, the graph (a row of ``global_``, in ``0..B-1``) each node
            belongs to.

    Returns: a scalar. With a single graph (B = 1) there are no negatives and E_neg is 0.

    Half-precision inputs are computed in float32 (float64 stays float64).

    Example:
        >>> import torch
        >>> from contrastkit.losses.local_global import local_global_jsd
        >>> local = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
        >>> graphs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> loss = local_global_jsd(local, graphs, local_ids=torch.tensor([0, 1]))
        >>> round(float(loss), 4)   # node 0 ↔ graph 0 (score 2), node 1 ↔ graph 1 (score 3)
        -0.6054
    """
    check_embeddings(local, "local")
    check_embeddings(global_, "global_")
    if local.shape[1] != global_.shape[1]:
        raise ValueError(
            f"local and global_ must have the same width, got {tuple(local.shape)} and "
            f"{tuple(global_.shape)}; project both to one dimension."
        )
    ids = torch.as_tensor(local_ids, device=local.device)
    if ids.shape != (local.shape[0],) or ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"local_ids must be an (N,) integer tensor of graph rows, one per node of local "
            f"{tuple(local.shape)}; got {ids.dtype} {tuple(ids.shape)}."
        )
    b = global_.shape[0]
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= b):
        raise ValueError(
            f"local_ids must be rows of global_ in 0..{b - 1}, got values in "
            f"{int(ids.min())}..{int(ids.max())}; give each node the row of its graph."
        )
    dtype = compute_dtype(local, global_)
    scores = local.to(dtype) @ global_.to(dtype).T  # (N, B)
    positive = F.one_hot(ids.long(), b).to(torch.bool)
    e_pos = (_LOG2 - F.softplus(-scores[positive])).mean()
    negatives = scores[~positive]
    if negatives.numel() == 0:
        return -e_pos
    e_neg = (F.softplus(-negatives) + negatives - _LOG2).mean()
    return e_neg - e_pos


class LocalGlobalJSDLoss(
    LossModule, function=local_global_jsd, check=_check_options, inputs=("local_ids",)
):
    """Module form of :func:`local_global_jsd`: ``loss_fn(local, global_, local_ids=ids)``.

    Example:
        >>> import torch
        >>> from contrastkit.losses.local_global import LocalGlobalJSDLoss
        >>> loss_fn = LocalGlobalJSDLoss()
        >>> loss = loss_fn(torch.randn(7, 4), torch.randn(2, 4),
        ...                local_ids=torch.tensor([0, 0, 0, 1, 1, 1, 1]))
        >>> loss.ndim
        0
    """
