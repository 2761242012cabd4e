"""Anomaly scores of embeddings and raw rows, thresholds at a false-positive rate, AUROC.

Every score here follows one convention: **higher = more anomalous**, one float32 score per
query row, returned on the CPU. Inputs are torch tensors; float64 inputs are computed in
float64 (then rounded to float32), anything else in float32.

=============================  =============================================================
score                          normality it negates / what it measures
=============================  =============================================================
:func:`csi_scores`             CSI's s_con: max_m cos(z_m, z)·‖z‖ over the normal bank
:func:`csi_ensemble_scores`    CSI's s_con-SI (+ s_cls-SI): s_con over K shifted copies
                               (rotations) of bank and query, balanced per shift
:func:`knn_distance_scores`    mean Euclidean distance to the k nearest bank rows
:func:`mahalanobis_scores`     squared Mahalanobis distance to the bank's Gaussian
                               (Ledoit–Wolf shrinkage covariance)
:func:`pca_reconstruction_     squared PCA reconstruction error (raw-input baseline)
scores`
:func:`ocsvm_scores`           −decision function of a one-class SVM (raw-input baseline)
=============================  =============================================================

A detector is used by fitting a score on normal rows only, choosing a threshold on held-out
*normal* scores at the false-positive rate one can afford (:func:`threshold_at_fpr`), then
flagging the rows above it (:func:`flag`). :class:`AnomalyScorer` bundles a method with its
fitted bank and saves as plain tensors + a JSON-able config (safetensors + JSON, no pickles).

References: Tack et al. 2020, "CSI: Novelty Detection via Contrastive Learning on
Distributionally Shifted Instances"; Lee et al. 2018 (Mahalanobis scores of deep features);
Ledoit & Wolf 2004, "A well-conditioned estimator for large-dimensional covariance matrices".

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> bank = torch.randn(200, 8, generator=g)
    >>> query = torch.cat([torch.randn(5, 8, generator=g), 6 + torch.randn(5, 8, generator=g)])
    >>> is_anomaly = torch.tensor([0] * 5 + [1] * 5)
    >>> auroc(mahalanobis_scores(bank, query, normalize=False), is_anomaly)
    1.0
    >>> scorer = AnomalyScorer("knn", k=3, normalize=False).fit(bank)
    >>> t = threshold_at_fpr(scorer.score(torch.randn(100, 8, generator=g)), fpr=0.05)
    >>> flag(scorer.score(query), t).tolist()[5:]
    [True, True, True, True, True]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_embeddings
from contrastkit.evaluate.protocols.anomaly import knn_anomaly_scores
from contrastkit.neighbours import topk_similar

__all__ = [
    "ANOMALY_METHODS",
    "AnomalyScorer",
    "MahalanobisScorer",
    "auroc",
    "csi_ensemble_scores",
    "csi_scores",
    "csi_weights",
    "false_positive_rate",
    "flag",
    "knn_anomaly_scores",
    "knn_distance_scores",
    "ledoit_wolf_shrinkage",
    "mahalanobis_scores",
    "ocsvm_scores",
    "pca_reconstruction_scores",
    "roc_points",
    "threshold_at_fpr",
]

#: the methods :class:`AnomalyScorer` bundles
ANOMALY_METHODS = ("csi", "knn", "mahalanobis")


# ----------------------------------------------------------------------------- helpers


def _dtype(*xs: Tensor) -> torch.dtype:
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


def _check_pair(bank: Tensor, query: Tensor, bank_name: str, query_name: str) -> None:
    check_embeddings(bank, bank_name)
    check_embeddings(query, query_name, allow_empty=True)
    if bank.shape[1] != query.shape[1]:
        raise ValueError(
            f"{bank_name} has D={bank.shape[1]} features per row but {query_name} has "
            f"D={query.shape[1]}; score queries with the same encoder (or the same raw "
            f"preprocessing) as the bank."
        )


def _check_int(value: int, name: str, low: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}.")
    return int(value)


def _out(x: Tensor) -> Tensor:
    return x.detach().to(device="cpu", dtype=torch.float32)


def _as_1d(x: Any, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).detach().cpu()
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D, one value per row, got shape {tuple(t.shape)}.")
    return t


# ----------------------------------------------------------------------------- CSI


def _s_con(bank: Tensor, query: Tensor, chunk_size: int, leave_one_out: bool = False) -> Tensor:
    """Normality max_m cos(z_m, z)·‖z‖ (Q,) in the inputs' compute dtype, on bank's device."""
    dtype = _dtype(bank, query)
    bank = bank.detach().to(dtype)
    query = query.detach().to(device=bank.device, dtype=dtype)
    best, _ = topk_similar(
        query, bank, 1, metric="cosine", exclude_self=leave_one_out, chunk_size=chunk_size
    )
    return best[:, 0] * query.norm(dim=1)


def csi_scores(bank: Tensor, query: Tensor, chunk_size: int = 1024) -> Tensor:
    """CSI's contrastive anomaly score, the negative of s_con (Tack et al. 2020, eq. 7):
    normality s_con(z; {z_m}) = max_m cos(z_m, z) · ‖z‖, over the normal bank.

    The features are used un-normalised: the norm of a query's feature is part of the score
    (CSI's encoders give normal inputs larger norms).

    Args:
        bank: (M, D) features of normal rows. query: (Q, D) features of the rows to score.
        chunk_size: queries scored at a time (memory O(chunk_size · M)).

    Returns:
        (Q,) float32 anomaly scores on the CPU; higher = more anomalous.

    Example:
        >>> import torch
        >>> csi_scores(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
        tensor([-2., -0.])
    """
    _check_pair(bank, query, "bank", "query")
    _check_int(chunk_size, "chunk_size", 1)
    return _out(-_s_con(bank, query, chunk_size))


def _check_shifted(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{name} must be a (K, rows, D) tensor: the features of the K shifted copies "
            f"(e.g. 4 rotations) of the same rows, got {shape}; stack the per-shift features "
            f"with torch.stack([...]) in shift order."
        )
    for k in range(x.shape[0]):
        check_embeddings(x[k], f"{name}[{k}]", allow_empty=name.startswith("query"))


def _check_logits(logits: Tensor, feats: Tensor, name: str, feats_name: str) -> None:
    k, n = feats.shape[0], feats.shape[1]
    if not isinstance(logits, Tensor) or tuple(logits.shape) != (k, n, k):
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"{name} must be ({k}, {n}, {k}): for each of the K={k} shifts of {feats_name}, "
            f"the shift classifier's K logits per row; got {shape}."
        )


def csi_weights(
    bank_by_shift: Tensor, bank_logits: Tensor | None = None, chunk_size: int = 1024
) -> tuple[Tensor, Tensor | None]:
    """CSI's balancing weights λ_k (and μ_k): one over the bank's mean of each shift's term.

    λ_k = 1 / mean_m s_con(T_k x_m; {T_k x_m'}_{m' ≠ m}) — the bank's own s_con is computed
    leave-one-out (each bank row against the others), so it is not trivially the row's norm;
    μ_k = 1 / mean_m logit_k(T_k x_m)[k], the shift classifier's logit of the true shift.
    (CSI's reference code divides by the mean feature norm, which is the s_con of a row
    against a bank that holds it.)

    Args:
        bank_by_shift: (K, M, D) features of the K shifted copies of the M normal rows, M ≥ 2.
        bank_logits: (K, M, K) shift-classifier logits of those copies, or None.
        chunk_size: rows scored at a time.

    Returns:
        ``(lambda_, mu)``: (K,) float64 tensors on the CPU (``mu`` None without logits).

    Raises:
        ValueError: a bank mean that is not positive (the weight would flip or blow up the
            term): the features or the shift classifier are not trained, or not the right ones.

    Example:
        >>> import torch
        >>> bank = torch.tensor([[[1.0, 1.0], [0.0, 3.0]]])  # K = 1 shift, M = 2 rows
        >>> lam, mu = csi_weights(bank)  # s_con, leave-one-out: 1/√2·√2 = 1 and 1/√2·3
        >>> round(float(lam[0]), 4), round(1 / ((1 + 3 / 2**0.5) / 2), 4), mu
        (0.6408, 0.6408, None)
    """
    _check_shifted(bank_by_shift, "bank_by_shift")
    if bank_by_shift.shape[1] < 2:
        raise ValueError(
            f"bank_by_shift holds {bank_by_shift.shape[1]} normal row(s); the leave-one-out "
            f"balancing weights need at least 2. Fit on more normal rows."
        )
    means = torch.stack(
        [
            _s_con(bank_by_shift[k], bank_by_shift[k], chunk_size, leave_one_out=True)
            .double()
            .mean()
            .cpu()
            for k in range(bank_by_shift.shape[0])
        ]
    )
    if not bool((means > 0).all()):
        raise ValueError(
            f"the bank's mean leave-one-out s_con is not positive for shift(s) "
            f"{torch.nonzero(means <= 0).flatten().tolist()} ({means.tolist()}); the balancing "
            f"weight 1/mean is undefined. Use features of a trained CSI/contrastive encoder."
        )
    lam = 1.0 / means
    if bank_logits is None:
        return lam, None
    _check_logits(bank_logits, bank_by_shift, "bank_logits", "bank_by_shift")
    k_all = torch.arange(bank_logits.shape[0], device=bank_logits.device)
    true = bank_logits.detach().double()[k_all, :, k_all]  # (K, M): logit of the true shift
    lmeans = true.mean(1).cpu()
    if not bool((lmeans > 0).all()):
        raise ValueError(
            f"the shift classifier's mean logit of the true shift over the bank is not "
            f"positive for shift(s) {torch.nonzero(lmeans <= 0).flatten().tolist()} "
            f"({lmeans.tolist()}); the balancing weight 1/mean is undefined. Train the shift "
            f"head longer, or pass no logits (s_con-SI only)."
        )
    return lam, 1.0 / lmeans


def _csi_ensemble(
    bank_by_shift: Tensor,
    query_by_shift: Tensor,
    lam: Tensor,
    mu: Tensor | None,
    query_logits: Tensor | None,
    chunk_size: int,
) -> Tensor:
    k_n = bank_by_shift.shape[0]
    normality = torch.zeros(query_by_shift.shape[1], dtype=torch.float64)
    for k in range(k_n):
        s = _s_con(bank_by_shift[k], query_by_shift[k], chunk_size).double().cpu()
        normality += float(lam[k]) * s
    if mu is not None and query_logits is not None:
        k_all = torch.arange(k_n, device=query_logits.device)
        true = query_logits.detach().double()[k_all, :, k_all].cpu()  # (K, Q)
        normality += (mu.double()[:, None] * true).sum(0)
    return _out(-normality)


def csi_ensemble_scores(
    bank_by_shift: Tensor,
    query_by_shift: Tensor,
    bank_logits: Tensor | None = None,
    query_logits: Tensor | None = None,
    chunk_size: int = 1024,
) -> Tensor:
    """CSI's ensembled score over shifts, negated: s_con-SI, plus s_cls-SI with logits
    (Tack et al. 2020, eq. 8–9).

    normality(x) = Σ_k λ_k · s_con(T_k x; {T_k x_m}) + Σ_k μ_k · logit_k(T_k x)[k], where T_k
    is the k-th shift (rotation by 90°·k), s_con is :func:`csi_scores`' normality against the
    bank's copies under the same shift, logit_k(T_k x)[k] is the shift classifier's logit of
    the true shift, and λ_k, μ_k are :func:`csi_weights` (one over the bank's mean of each
    term, the bank's s_con leave-one-out).

    Args:
        bank_by_shift: (K, M, D) features of the K shifted copies of M normal rows (M ≥ 2).
        query_by_shift: (K, Q, D) features of the same K shifts of the rows to score.
        bank_logits: (K, M, K) shift-classifier logits of the bank's copies, or None.
        query_logits: (K, Q, K) the same for the queries; given iff ``bank_logits`` is.
        chunk_size: rows scored at a time.

    Returns:
        (Q,) float32 anomaly scores on the CPU; higher = more anomalous.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> bank, query = 3 + torch.randn(2, 10, 4, generator=g), torch.randn(2, 3, 4, generator=g)
        >>> csi_ensemble_scores(bank, query).shape
        torch.Size([3])
    """
    _check_shifted(bank_by_shift, "bank_by_shift")
    _check_shifted(query_by_shift, "query_by_shift")
    if query_by_shift.shape[0] != bank_by_shift.shape[0] or (
        query_by_shift.shape[2] != bank_by_shift.shape[2]
    ):
        raise ValueError(
            f"query_by_shift has shape {tuple(query_by_shift.shape)} but bank_by_shift "
            f"{tuple(bank_by_shift.shape)}; both need the same K shifts and D features."
        )
    if (bank_logits is None) != (query_logits is None):
        raise ValueError(
            "pass both bank_logits and query_logits (s_con-SI + s_cls-SI) or neither "
            "(s_con-SI only)."
        )
    if query_logits is not None:
        _check_logits(query_logits, query_by_shift, "query_logits", "query_by_shift")
    lam, mu = csi_weights(bank_by_shift, bank_logits, chunk_size)
    return _csi_ensemble(bank_by_shift, query_by_shift, lam, mu, query_logits, chunk_size)


# ----------------------------------------------------------------------------- kNN


def knn_distance_scores(
    bank: Tensor, query: Tensor, k: int = 1, normalize: bool = True, chunk_size: int = 1024
) -> Tensor:
    """Mean Euclidean distance of each query to its ``k`` nearest bank rows.

    With ``normalize`` the rows are L2-normalised first (distances on the unit sphere), so the
    neighbours are the most cosine-similar rows and, for k = 1, the score is
    √(2 · :func:`~contrastkit.evaluate.protocols.anomaly.knn_anomaly_scores`) — the same
    ranking as the anomaly protocol's. Neighbours are found by the package's exact top-k
    search (:func:`contrastkit.neighbours.topk_similar`, chunked; without ``normalize`` on the
    Euclidean geometry through an augmented inner product), then their distances are computed
    exactly (a query equal to a bank row has distance 0).

    Args:
        bank: (M, D) normal rows. query: (Q, D). k: neighbours (capped at M).
        normalize: L2-normalise the rows first. chunk_size: queries at a time.

    Returns:
        (Q,) float32 scores ≥ 0 on the CPU; higher = more anomalous.

    Example:
        >>> import torch
        >>> bank = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> knn_distance_scores(bank, torch.tensor([[3.0, 4.0], [0.0, 1.0]]), normalize=False)
        tensor([0., 1.])
    """
    _check_pair(bank, query, "bank", "query")
    k = min(_check_int(k, "k", 1), bank.shape[0])
    _check_int(chunk_size, "chunk_size", 1)
    dtype = _dtype(bank, query)
    b = bank.detach().to(dtype)
    q = query.detach().to(device=b.device, dtype=dtype)
    if normalize:
        b, q = F.normalize(b, dim=1), F.normalize(q, dim=1)
        _, idx = topk_similar(q, b, k, metric="dot", chunk_size=chunk_size)
    else:
        # argmin ‖q − b‖² = argmax q·b − ‖b‖²/2: a dot product of augmented rows
        one = torch.ones(q.shape[0], 1, dtype=dtype, device=b.device)
        half = -0.5 * (b * b).sum(1, keepdim=True)
        _, idx = topk_similar(
            torch.cat([q, one], 1), torch.cat([b, half], 1), k, metric="dot", chunk_size=chunk_size
        )
    out = []
    for s in range(0, q.shape[0], chunk_size):
        qc, ic = q[s : s + chunk_size], idx[s : s + chunk_size]
        out.append((qc[:, None, :] - b[ic]).norm(dim=2).mean(1))
    if not out:
        return torch.zeros(0)
    return _out(torch.cat(out))


# ----------------------------------------------------------------------------- Mahalanobis


def ledoit_wolf_shrinkage(x: Tensor) -> float:
    """The Ledoit–Wolf shrinkage coefficient of rows ``x`` (M, D) (Ledoit & Wolf 2004), as
    scikit-learn's ``ledoit_wolf_shrinkage`` with centring: the weight ρ ∈ [0, 1] of
    Σ = (1 − ρ)·S + ρ·(tr S / D)·I, S the empirical (1/M) covariance; computed in float64.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(10_000, 3, generator=g)
        >>> ledoit_wolf_shrinkage(x)  # isotropic: shrink all the way to (tr S / D)·I
        1.0
        >>> round(ledoit_wolf_shrinkage(x * torch.tensor([1.0, 10.0, 100.0])), 3)
        0.0
    """
    check_embeddings(x, "x")
    x = x.detach().double()
    x = x - x.mean(0, keepdim=True)
    n, p = x.shape
    x2 = x * x
    emp_cov_trace = x2.sum(0) / n
    mu = float(emp_cov_trace.sum()) / p
    beta_ = float((x2.T @ x2).sum())
    delta_ = float(((x.T @ x) ** 2).sum()) / n**2
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * float(emp_cov_trace.sum()) + p * mu**2) / p
    beta = min(beta, delta)
    return 0.0 if beta == 0 else float(beta / delta)


def _rows(x: Tensor, normalize: bool) -> Tensor:
    x = x.detach().double()
    return F.normalize(x, dim=1) if normalize else x


class MahalanobisScorer:
    """Squared Mahalanobis distance to the Gaussian fitted on the normal bank:
    (x − μ)ᵀ Σ⁻¹ (x − μ), μ the bank's mean, Σ its shrinkage covariance
    (1 − ρ)·S + ρ·(tr S / D)·I, S the empirical (1/M) covariance (Lee et al. 2018's score of
    deep features, one Gaussian for the normal class). Computed in float64.

    Args:
        normalize: L2-normalise rows (bank and queries) first.
        shrinkage: ``"ledoit_wolf"`` (ρ from :func:`ledoit_wolf_shrinkage`), or a fixed
            ρ ∈ [0, 1]; 0 is the plain empirical covariance (which needs M > D and full rank).

    Attributes (after :meth:`fit`): ``mean_`` (D,), ``precision_`` (D, D) = Σ⁻¹ (float64, CPU),
    ``shrinkage_`` the ρ used.

    Example:
        >>> import torch
        >>> bank = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
        >>> scorer = MahalanobisScorer(normalize=False, shrinkage=0.0).fit(bank)
        >>> scorer.score(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # Σ = diag(0.5, 2)
        tensor([2.0000, 0.5000])
    """

    def __init__(self, normalize: bool = True, shrinkage: float | str = "ledoit_wolf") -> None:
        if isinstance(shrinkage, str):
            if shrinkage != "ledoit_wolf":
                raise ValueError(
                    f"shrinkage must be 'ledoit_wolf' or a number in [0, 1], got {shrinkage!r}."
                )
        elif not 0.0 <= float(shrinkage) <= 1.0:
            raise ValueError(
                f"shrinkage must be 'ledoit_wolf' or a number in [0, 1], got {shrinkage!r}."
            )
        else:
            shrinkage = float(shrinkage)
        self.normalize = bool(normalize)
        self.shrinkage = shrinkage
        self.mean_: Tensor | None = None
        self.precision_: Tensor | None = None
        self.shrinkage_: float | None = None

    def fit(self, bank: Tensor) -> MahalanobisScorer:
        """Fit μ and Σ⁻¹ on the normal rows ``bank`` (M, D), M ≥ 2; returns ``self``."""
        check_embeddings(bank, "bank")
        if bank.shape[0] < 2:
            raise ValueError(
                f"bank holds {bank.shape[0]} row; a covariance needs at least 2 normal rows."
            )
        x = _rows(bank, self.normalize).cpu()
        mean = x.mean(0)
        xc = x - mean
        emp = xc.T @ xc / x.shape[0]
        rho = ledoit_wolf_shrinkage(x) if self.shrinkage == "ledoit_wolf" else self.shrinkage
        d = x.shape[1]
        cov = (1.0 - rho) * emp + rho * (torch.trace(emp) / d) * torch.eye(d, dtype=emp.dtype)
        chol, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:
            raise ValueError(
                f"the covariance of the {x.shape[0]} bank rows ({d} features, shrinkage "
                f"{rho:.3g}) is singular; use shrinkage='ledoit_wolf' (or a fixed shrinkage > 0), "
                f"or fit on more normal rows than features."
            )
        self.mean_ = mean
        self.precision_ = torch.cholesky_inverse(chol)
        self.shrinkage_ = float(rho)
        return self

    def score(self, query: Tensor, chunk_size: int = 4096) -> Tensor:
        """(Q,) float32 squared Mahalanobis distances of ``query`` (Q, D) rows, on the CPU;
        higher = more anomalous."""
        if self.mean_ is None or self.precision_ is None:
            raise RuntimeError("MahalanobisScorer is not fitted; call .fit(bank) first.")
        check_embeddings(query, "query", allow_empty=True)
        if query.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"query has D={query.shape[1]} features but the scorer was fitted on "
                f"D={self.mean_.shape[0]}; score rows of the same encoder."
            )
        out = []
        for s in range(0, query.shape[0], chunk_size):
            xc = _rows(query[s : s + chunk_size], self.normalize).cpu() - self.mean_
            out.append(((xc @ self.precision_) * xc).sum(1))
        return _out(torch.cat(out)) if out else torch.zeros(0)


def mahalanobis_scores(
    bank: Tensor, query: Tensor, normalize: bool = True, shrinkage: float | str = "ledoit_wolf"
) -> Tensor:
    """Squared Mahalanobis distances (Q,) of ``query`` (Q, D) to the Gaussian of ``bank``
    (M, D): ``MahalanobisScorer(normalize, shrinkage).fit(bank).score(query)``.

    Example:
        >>> import torch
        >>> bank = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
        >>> mahalanobis_scores(bank, torch.tensor([[0.0, 2.0]]), normalize=False, shrinkage=0.0)
        tensor([2.])
    """
    _check_pair(bank, query, "bank", "query")
    return MahalanobisScorer(normalize, shrinkage).fit(bank).score(query)


# ----------------------------------------------------------------------------- raw baselines


def _numpy_rows(x: Tensor, name: str) -> np.ndarray:
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ValueError(
            f"{name} must be a tensor of rows (N, ...) (images are flattened), got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}."
        )
    return x.detach().flatten(1).double().cpu().numpy()


def _numpy_pair(train: Tensor, query: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``train`` and ``query`` as float64 (N, F) arrays with the same F (the raw baselines)."""
    x_tr, x_q = _numpy_rows(train, "train"), _numpy_rows(query, "query")
    if x_tr.shape[1] != x_q.shape[1]:
        raise ValueError(
            f"train rows have {x_tr.shape[1]} values but query rows {x_q.shape[1]}; give both "
            f"the same shape."
        )
    return x_tr, x_q


def pca_reconstruction_scores(
    train: Tensor, query: Tensor, n_components: float | int = 0.9
) -> Tensor:
    """Squared PCA reconstruction error ‖x − x̂‖² of each query row, PCA fitted on the normal
    ``train`` rows (a raw-input baseline: rows unlike the normal ones reconstruct badly).

    Args:
        train: (N, ...) normal rows (images are flattened). query: (Q, ...) same shape.
        n_components: a float in (0, 1): the fraction of explained variance to keep; an int:
            the number of components (≤ min(N, D)).

    Returns:
        (Q,) float32 scores ≥ 0 on the CPU; higher = more anomalous.

    Example:
        >>> import torch
        >>> train = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.1]])
        >>> s = pca_reconstruction_scores(train, torch.tensor([[4.0, 4.0], [0.0, 4.0]]), 1)
        >>> bool(s[1] > 100 * s[0])
        True
    """
    from sklearn.decomposition import PCA

    x_tr, x_q = _numpy_pair(train, query)
    limit = min(x_tr.shape)
    if isinstance(n_components, bool) or not isinstance(n_components, (int, float)):
        raise ValueError(f"n_components must be a float in (0, 1) or an int, got {n_components!r}.")
    if isinstance(n_components, float) and not 0.0 < n_components < 1.0:
        raise ValueError(
            f"n_components={n_components} as a float is a fraction of explained variance and "
            f"must lie in (0, 1); pass an int for a number of components."
        )
    if isinstance(n_components, int) and not 1 <= n_components <= limit:
        raise ValueError(
            f"n_components={n_components} components must lie in [1, {limit}] (min of the "
            f"{x_tr.shape[0]} training rows and {x_tr.shape[1]} values per row)."
        )
    pca = PCA(n_components=n_components, svd_solver="full").fit(x_tr)
    if x_q.shape[0] == 0:
        return torch.zeros(0)
    recon = pca.inverse_transform(pca.transform(x_q))
    return torch.from_numpy(((x_q - recon) ** 2).sum(1)).float()


def ocsvm_scores(
    train: Tensor,
    query: Tensor,
    nu: float = 0.1,
    gamma: float | str = "scale",
    max_train: int = 5000,
    seed: int = 0,
) -> Tensor:
    """One-class SVM (RBF kernel, Schölkopf et al. 2001) on standardised rows, a raw-input
    baseline: the negative of scikit-learn's ``OneClassSVM.decision_function``.

    Rows are standardised with the statistics of all ``train`` rows; the SVM is fitted on at
    most ``max_train`` of them, drawn without replacement by ``torch.randperm`` seeded with
    ``seed`` (its cost grows quadratically or worse with the rows).

    Args:
        train: (N, ...) normal rows (images are flattened). query: (Q, ...) same shape.
        nu: upper bound on the fraction of training outliers, in (0, 1].
        gamma: the RBF kernel width (scikit-learn's ``"scale"``, ``"auto"`` or a float).
        max_train: the most training rows fitted. seed: the subsample.

    Returns:
        (Q,) float32 scores on the CPU; higher = more anomalous (> 0: outside the support).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> s = ocsvm_scores(torch.randn(200, 2, generator=g), torch.tensor([[0.0, 0.0], [5.0, 5.0]]))
        >>> bool(s[1] > s[0])
        True
    """
    from sklearn.svm import OneClassSVM

    x_tr, x_q = _numpy_pair(train, query)
    if not 0.0 < float(nu) <= 1.0:
        raise ValueError(f"nu must lie in (0, 1], got {nu!r}.")
    max_train = _check_int(max_train, "max_train", 1)
    mean = x_tr.mean(0)
    std = x_tr.std(0)
    std[std == 0] = 1.0
    if x_tr.shape[0] > max_train:
        g = torch.Generator().manual_seed(int(seed))
        keep = torch.randperm(x_tr.shape[0], generator=g)[:max_train].numpy()
        x_tr = x_tr[np.sort(keep)]
    svm = OneClassSVM(kernel="rbf", nu=float(nu), gamma=gamma).fit((x_tr - mean) / std)
    if x_q.shape[0] == 0:
        return torch.zeros(0)
    return torch.from_numpy(-svm.decision_function((x_q - mean) / std)).float()


# ----------------------------------------------------------------------------- thresholds


def threshold_at_fpr(normal_scores: Tensor, fpr: float) -> float:
    """The threshold t at which at most a fraction ``fpr`` of held-out *normal* scores are
    flagged (strictly above t), as close to ``fpr`` as the scores allow.

    With the n scores sorted s_(1) ≤ … ≤ s_(n) and a = ⌊fpr · n⌋ the rows that may be flagged,
    t = s_(n−a): the smallest threshold with at most a scores above it (ties at t are not
    flagged, so fewer may be). ``fpr`` = 1 gives −inf (flag everything). Choose t on normal
    rows held out from those the detector was fitted on (a bank row scores itself as normal);
    on fresh rows of the same distribution the rate flagged is then ≈ ``fpr``.

    Args:
        normal_scores: (n,) anomaly scores of held-out normal rows. fpr: in [0, 1].

    Example:
        >>> import torch
        >>> threshold_at_fpr(torch.arange(100.0), 0.05)
        94.0
    """
    s = _as_1d(normal_scores, "normal_scores").double()
    if s.numel() == 0:
        raise ValueError("normal_scores is empty; score some held-out normal rows first.")
    if not bool(torch.isfinite(s).all()):
        raise ValueError("normal_scores holds NaN or inf; check the scorer's inputs.")
    if not 0.0 <= float(fpr) <= 1.0:
        raise ValueError(f"fpr must lie in [0, 1], e.g. 0.05 for 5%, got {fpr!r}.")
    n = s.numel()
    allowed = min(n, math.floor(float(fpr) * n + 1e-9))
    if allowed >= n:
        return -math.inf
    return float(s.sort().values[n - allowed - 1])


def flag(scores: Tensor, threshold: float) -> Tensor:
    """(Q,) bool: the rows whose anomaly score is strictly above ``threshold``.

    Example:
        >>> import torch
        >>> flag(torch.tensor([0.1, 0.5, 0.9]), 0.5)
        tensor([False, False,  True])
    """
    return _as_1d(scores, "scores") > float(threshold)


def false_positive_rate(normal_scores: Tensor, threshold: float) -> float:
    """The fraction of (normal) scores strictly above ``threshold``.

    Example:
        >>> import torch
        >>> false_positive_rate(torch.arange(100.0), 94.0)
        0.05
    """
    s = _as_1d(normal_scores, "normal_scores")
    if s.numel() == 0:
        raise ValueError("normal_scores is empty; score some held-out normal rows first.")
    return float((s > float(threshold)).double().mean())


# ----------------------------------------------------------------------------- metrics


def _truth(scores: Any, is_anomaly: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _as_1d(scores, "scores").double().numpy()
    y = _as_1d(is_anomaly, "is_anomaly")
    if y.numel() != s.shape[0]:
        raise ValueError(
            f"scores has {s.shape[0]} rows but is_anomaly {y.numel()}; give one flag per score."
        )
    y = (y != 0).numpy().astype(np.int64)
    n_anom = int(y.sum())
    if n_anom in (0, y.shape[0]):
        raise ValueError(
            f"is_anomaly flags {n_anom} anomalies among {y.shape[0]} rows; AUROC needs both "
            f"normal and anomalous rows."
        )
    return s, y


def auroc(scores: Tensor, is_anomaly: Tensor) -> float:
    """Area under the ROC curve, anomalies (``is_anomaly`` true / non-zero) as the positive
    class and higher scores more anomalous (scikit-learn's ``roc_auc_score``).

    Example:
        >>> import torch
        >>> auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1]))
        1.0
    """
    from sklearn.metrics import roc_auc_score

    s, y = _truth(scores, is_anomaly)
    return float(roc_auc_score(y, s))


def roc_points(scores: Tensor, is_anomaly: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)``: float64 arrays of the ROC curve's points, from (0, 0) to (1, 1), for a
    plot (scikit-learn's ``roc_curve``, anomalies positive).

    Example:
        >>> import torch
        >>> fpr, tpr = roc_points(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1]))
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    from sklearn.metrics import roc_curve

    s, y = _truth(scores, is_anomaly)
    fpr, tpr, _ = roc_curve(y, s)
    return fpr.astype(np.float64), tpr.astype(np.float64)


# ----------------------------------------------------------------------------- the scorer


class AnomalyScorer:
    """One anomaly method with its fitted normal bank, saveable as plain tensors + JSON.

    Methods: ``"csi"`` (:func:`csi_scores` for a (M, D) bank; :func:`csi_ensemble_scores` for a
    (K, M, D) bank of K shifted copies, with shift logits optional), ``"knn"``
    (:func:`knn_distance_scores`), ``"mahalanobis"`` (:class:`MahalanobisScorer`). Scores:
    higher = more anomalous.

    Args:
        method: one of :data:`ANOMALY_METHODS`.
        k: neighbours (knn). normalize: L2-normalise rows first (knn, mahalanobis).
        shrinkage: ``"ledoit_wolf"`` or a fixed ρ ∈ [0, 1] (mahalanobis).
        chunk_size: queries scored at a time.

    :meth:`state` returns ``(tensors, config)``: a dict of contiguous CPU tensors (for
    ``safetensors.torch.save_file``) and a JSON-able dict; :meth:`from_state` rebuilds the
    fitted scorer from them.

    Example:
        >>> import torch
        >>> scorer = AnomalyScorer("knn", k=1, normalize=False).fit(torch.zeros(3, 2))
        >>> tensors, config = scorer.state()
        >>> AnomalyScorer.from_state(tensors, config).score(torch.tensor([[3.0, 4.0]]))
        tensor([5.])
    """

    def __init__(
        self,
        method: str = "knn",
        *,
        k: int = 1,
        normalize: bool = True,
        shrinkage: float | str = "ledoit_wolf",
        chunk_size: int = 1024,
    ) -> None:
        if method not in ANOMALY_METHODS:
            import difflib

            close = difflib.get_close_matches(str(method), ANOMALY_METHODS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown anomaly method {method!r}; valid: {list(ANOMALY_METHODS)}.{hint}"
            )
        self.method = method
        self.k = _check_int(k, "k", 1)
        self.normalize = bool(normalize)
        self.chunk_size = _check_int(chunk_size, "chunk_size", 1)
        self._mahalanobis = MahalanobisScorer(normalize, shrinkage)  # validates shrinkage
        self.shrinkage = self._mahalanobis.shrinkage
        self.tensors: dict[str, Tensor] = {}

    @property
    def fitted(self) -> bool:
        return bool(self.tensors)

    def config(self) -> dict[str, Any]:
        """The JSON-able options (the method and its settings)."""
        return {
            "method": self.method,
            "k": self.k,
            "normalize": self.normalize,
            "shrinkage": self.shrinkage,
            "chunk_size": self.chunk_size,
        }

    def fit(self, bank: Tensor, bank_logits: Tensor | None = None) -> AnomalyScorer:
        """Fit on the normal rows: ``bank`` (M, D), or for ``"csi"`` also (K, M, D) shifted
        copies with ``bank_logits`` (K, M, K) optional. Returns ``self``."""
        t: dict[str, Tensor] = {}
        if self.method == "csi":
            if isinstance(bank, Tensor) and bank.dim() == 3:
                lam, mu = csi_weights(bank, bank_logits, self.chunk_size)
                t = {"bank": bank.detach(), "lambda": lam}
                if mu is not None:
                    t["mu"] = mu
            else:
                check_embeddings(bank, "bank")
                if bank_logits is not None:
                    raise ValueError(
                        "bank_logits need a (K, M, D) bank of K shifted copies; a (M, D) bank "
                        "is scored by s_con alone. Stack the shifted features or drop the logits."
                    )
                t = {"bank": bank.detach()}
        elif bank_logits is not None:
            raise ValueError(f"bank_logits are for method 'csi' only, not {self.method!r}.")
        elif self.method == "knn":
            check_embeddings(bank, "bank")
            t = {"bank": bank.detach()}
        else:
            m = self._mahalanobis.fit(bank)
            t = {
                "mean": m.mean_,
                "precision": m.precision_,
                "shrinkage": torch.tensor([m.shrinkage_], dtype=torch.float64),
            }
        self.tensors = {name: v.detach().cpu().contiguous() for name, v in t.items()}
        return self

    def score(self, query: Tensor, query_logits: Tensor | None = None) -> Tensor:
        """(Q,) float32 anomaly scores of ``query`` (Q, D), or (K, Q, D) shifted copies (with
        ``query_logits`` (K, Q, K) iff fitted with logits) for a shifted ``"csi"`` bank."""
        if not self.fitted:
            raise RuntimeError("AnomalyScorer is not fitted; call .fit(bank) first.")
        t = self.tensors
        if self.method == "csi" and t["bank"].dim() == 3:
            bank = t["bank"]
            _check_shifted(query, "query")
            if query.shape[0] != bank.shape[0] or query.shape[2] != bank.shape[2]:
                raise ValueError(
                    f"query has shape {tuple(query.shape)} but the fitted bank "
                    f"{tuple(bank.shape)}; give the same K shifts and D features."
                )
            if ("mu" in t) != (query_logits is not None):
                need = "needs query_logits" if "mu" in t else "was fitted without logits"
                raise ValueError(
                    f"this CSI scorer {need}; pass query_logits (K, Q, K) exactly when the "
                    f"bank was fitted with bank_logits."
                )
            if query_logits is not None:
                _check_logits(query_logits, query, "query_logits", "query")
            return _csi_ensemble(
                bank.to(query.device), query, t["lambda"], t.get("mu"), query_logits,
                self.chunk_size,
            )  # fmt: skip
        if query_logits is not None:
            raise ValueError("query_logits are for a CSI scorer fitted on shifted copies only.")
        if self.method == "csi":
            return csi_scores(t["bank"].to(query.device), query, self.chunk_size)
        if self.method == "knn":
            return knn_distance_scores(
                t["bank"].to(query.device), query, self.k, self.normalize, self.chunk_size
            )
        m = self._mahalanobis
        m.mean_, m.precision_ = t["mean"], t["precision"]
        m.shrinkage_ = float(t["shrinkage"][0])
        return m.score(query)

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """``(tensors, config)``: contiguous CPU tensors and the JSON-able options."""
        if not self.fitted:
            raise RuntimeError("AnomalyScorer is not fitted; call .fit(bank) before .state().")
        return dict(self.tensors), self.config()

    @classmethod
    def from_state(cls, tensors: dict[str, Tensor], config: dict[str, Any]) -> AnomalyScorer:
        """The fitted scorer saved by :meth:`state`."""
        config = dict(config)
        method = config.pop("method", None)
        valid = {"k", "normalize", "shrinkage", "chunk_size"}
        bad = sorted(set(config) - valid)
        if method is None or bad:
            raise ValueError(
                f"not an AnomalyScorer config: needs 'method' and only {sorted(valid)}, got "
                f"keys {sorted(config) + (['method'] if method else [])}."
            )
        need = {
            "csi": {"bank"},
            "knn": {"bank"},
            "mahalanobis": {"mean", "precision", "shrinkage"},
        }.get(method, set())
        scorer = cls(method, **config)
        missing = sorted(need - set(tensors))
        if missing:
            raise ValueError(
                f"the saved tensors of a {method!r} scorer lack {missing}; the file is not "
                f"the state of a fitted AnomalyScorer."
            )
        scorer.tensors = {n: v.detach().cpu().contiguous() for n, v in tensors.items()}
        return scorer
