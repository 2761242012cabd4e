"""Audio evaluation: the pooled-MFCC baseline, cross-validated probes and label retrieval.

- :func:`pooled_mfcc_features`: the classic baseline, mean and standard deviation of each
  MFCC coefficient over a clip's valid frames (waveforms are turned into 13 MFCCs first,
  :func:`~contrastkit.data.spectral.mfcc`; frame features are pooled as they are).
- :func:`cv_probe`: a linear probe (multinomial logistic regression on standardised
  features) scored by stratified K-fold cross-validation; in each outer fold the penalty C
  is chosen by an inner cross-validation on that fold's training part only, so nothing is
  chosen on the rows it is scored on. With ``shots`` it is the few-label probe: each outer
  fold's classifier sees ``shots`` labelled clips per class (several random draws), C chosen
  by an inner CV on those clips.
- :func:`cv_knn`: cosine kNN accuracy with k chosen the same way.
- :func:`label_recall_at_k`: retrieval where a hit is any key with the query's label
  (audio→audio word retrieval, text→audio among one voice's clips), a query's own row
  excluded when queries and keys are the same set.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.eye(3)[[0] * 20 + [1] * 20] + 0.1 * torch.randn(40, 3, generator=g)
    >>> y = torch.tensor([0] * 20 + [1] * 20)
    >>> cv_probe(x, y, folds=4, Cs=(1.0,))["accuracy"]
    1.0
    >>> label_recall_at_k(x, x, y, y, ks=(1,), exclude_self=True)["recall@1"]
    1.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.data.audio import AudioBatch
from contrastkit.evaluate.knn import knn_predict

__all__ = [
    "DEFAULT_CS",
    "cv_knn",
    "cv_probe",
    "label_recall_at_k",
    "pitch_averaged_embeddings",
    "pooled_mfcc_features",
    "probe_accuracy",
]

#: the probe's C grid (inverse L2 strength of sklearn's LogisticRegression)
DEFAULT_CS = (0.01, 0.1, 1.0, 10.0)


def pooled_mfcc_features(audio: AudioBatch, n_mfcc: int = 13, chunk: int = 256) -> Tensor:
    """(N, 2·F) mean and standard deviation over each clip's valid frames.

    Args:
        audio: waveforms (turned into ``n_mfcc`` MFCCs, librosa's defaults) or frame features
            (pooled as they are, e.g. FSDD's MFCCs).
        n_mfcc: MFCCs per frame for waveforms.
        chunk: clips turned into MFCCs at a time.
    """
    if audio.is_wave:
        from contrastkit.data.spectral import frame_lengths, mfcc

        parts = []
        for s in range(0, len(audio), chunk):
            part = audio.select(torch.arange(s, min(s + chunk, len(audio))))
            frames = mfcc(part.values.float(), int(part.sample_rate), n_mfcc=n_mfcc)
            lengths = frame_lengths(part.lengths, 512).clamp(1, frames.shape[1])
            parts.append(_pool(frames, lengths))
        return torch.cat(parts)
    return _pool(audio.values.float(), audio.lengths)


def _pool(frames: Tensor, lengths: Tensor) -> Tensor:
    t = torch.arange(frames.shape[1], device=frames.device)
    mask = (t[None, :] < lengths.to(frames.device)[:, None]).to(frames.dtype)[..., None]
    n = mask.sum(1).clamp_min(1)
    mean = (frames * mask).sum(1) / n
    var = (((frames - mean[:, None]) * mask) ** 2).sum(1) / n
    return torch.cat([mean, var.sqrt()], dim=1)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x)


def _few(y: np.ndarray, rows: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """``shots`` random rows of each class among ``rows``."""
    picked = []
    for c in np.unique(y[rows]):
        of_c = rows[y[rows] == c]
        picked.append(rng.choice(of_c, size=min(shots, len(of_c)), replace=False))
    return np.concatenate(picked)


class _Logistic:
    """Multinomial logistic regression on standardised features, sklearn's objective
    (``C·Σ cross-entropy + ½‖W‖²``, the bias unpenalised) minimised by L-BFGS in torch
    (:func:`~contrastkit.evaluate.linear.fit_logistic`; several times faster than
    scikit-learn's solver on wide embeddings)."""

    def __init__(self, c: float, max_iter: int = 100) -> None:
        self.c, self.max_iter = float(c), int(max_iter)

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Logistic:
        from contrastkit.evaluate.linear import fit_logistic

        xt = torch.as_tensor(x, dtype=torch.float32)
        self.mean = xt.mean(0, keepdim=True)
        self.std = xt.std(0, keepdim=True, unbiased=False).clamp_min(1e-6) if len(xt) > 1 else 1
        self.classes, yt = np.unique(y, return_inverse=True)
        wd = 1.0 / (2.0 * self.c * len(xt))
        self.w, self.b = fit_logistic(
            (xt - self.mean) / self.std,
            torch.as_tensor(yt),
            len(self.classes),
            wd,
            self.max_iter,
        )
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        xt = (torch.as_tensor(x, dtype=torch.float32) - self.mean) / self.std
        return self.classes[(xt @ self.w + self.b).argmax(1).numpy()]


def _logistic(c: float) -> _Logistic:
    return _Logistic(c)


def _choose_c(x: np.ndarray, y: np.ndarray, cs: Sequence[float], inner: int, seed: int) -> float:
    """The C of the best mean accuracy in a stratified ``inner``-fold CV on (x, y) (ties: the
    smaller C)."""
    from sklearn.model_selection import StratifiedKFold

    k = int(min(inner, np.bincount(np.unique(y, return_inverse=True)[1]).min()))
    if len(cs) == 1 or k < 2:
        return float(cs[0])
    scores = np.zeros(len(cs))
    for fit, val in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        for j, c in enumerate(cs):
            scores[j] += float((_logistic(c).fit(x[fit], y[fit]).predict(x[val]) == y[val]).mean())
    return float(cs[int(np.argmax(scores))])


def probe_accuracy(
    x: np.ndarray,
    y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    shots: int | None = None,
    draws: int = 5,
    Cs: Sequence[float] = DEFAULT_CS,
    inner_folds: int = 3,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[float, list[float]]:
    """Test accuracy of the probe fitted on (x, y), C chosen by an ``inner_folds`` CV on
    them (seeded by ``seed``); with ``shots``, the mean over ``draws`` fits on ``shots``
    rows per class drawn from ``rng``. Returns (accuracy, the C of each fit)."""
    if shots is None:
        runs = [np.arange(len(y))]
    else:
        rng = rng if rng is not None else np.random.default_rng(seed)
        runs = [_few(y, np.arange(len(y)), shots, rng) for _ in range(draws)]
    accs, chosen = [], []
    for rows in runs:
        c = _choose_c(x[rows], y[rows], Cs, inner_folds, seed)
        chosen.append(c)
        accs.append(float((_logistic(c).fit(x[rows], y[rows]).predict(test_x) == test_y).mean()))
    return float(np.mean(accs)), chosen


def cv_probe(
    features: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    shots: int | None = None,
    draws: int = 5,
    Cs: Sequence[float] = DEFAULT_CS,
    inner_folds: int = 3,
) -> dict[str, Any]:
    """Cross-validated linear-probe accuracy (nested: C chosen inside each training fold).

    Args:
        features: (N, D) clip embeddings (or baseline features).
        labels: (N,) integer classes.
        folds: outer stratified folds (shuffled with ``seed``).
        seed: the folds' and the few-label draws' seed.
        shots: None: every training clip's label; k: k labelled clips per class of each
            training fold (``draws`` random draws, averaged).
        draws: few-label draws per fold.
        Cs: the C grid; inner_folds: folds of the inner CV that chooses C.

    Returns:
        ``{"accuracy": mean over folds, "std": std over folds, "fold_accuracies",
        "Cs_chosen": {C: count}, "folds", "shots", "time_s"}``.
    """
    from sklearn.model_selection import StratifiedKFold

    t0 = time.perf_counter()
    x, y = _numpy(features), _numpy(labels).astype(np.int64)
    rng = np.random.default_rng(seed)
    accs, chosen = [], {}
    for fold, (tr, te) in enumerate(
        StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)
    ):
        acc, cs = probe_accuracy(
            x[tr], y[tr], x[te], y[te], shots=shots, draws=draws, Cs=Cs,
            inner_folds=inner_folds, seed=seed + fold, rng=rng,
        )  # fmt: skip
        for c in cs:
            chosen[c] = chosen.get(c, 0) + 1
        accs.append(acc)
    return {
        "accuracy": float(np.mean(accs)),
        "std": float(np.std(accs)),
        "fold_accuracies": accs,
        "Cs_chosen": chosen,
        "folds": folds,
        "shots": shots,
        "time_s": time.perf_counter() - t0,
    }


def _knn(bank: Tensor, bank_y: Tensor, queries: Tensor, k: int) -> Tensor:
    """Cosine kNN classes, votes weighted by exp(similarity)."""
    return knn_predict(bank, bank_y, queries, k=k, temperature=1.0)


def cv_knn(
    features: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    ks: Sequence[int] = (1, 5, 10, 20),
    inner_folds: int = 3,
) -> dict[str, Any]:
    """Cross-validated cosine kNN accuracy (votes weighted by exp(similarity)); k chosen by an
    inner CV in each training fold. Returns ``{"accuracy", "std", "fold_accuracies",
    "ks_chosen"}``."""
    from sklearn.model_selection import StratifiedKFold

    x = torch.as_tensor(_numpy(features)).float()
    y = torch.as_tensor(_numpy(labels).astype(np.int64))
    accs, chosen = [], {}
    outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fold, (tr, te) in enumerate(outer.split(x.numpy(), y.numpy())):
        inner = StratifiedKFold(inner_folds, shuffle=True, random_state=seed + fold)
        scores = np.zeros(len(ks))
        for itr, iva in inner.split(x[tr].numpy(), y[tr].numpy()):
            a, b = torch.as_tensor(tr[itr]), torch.as_tensor(tr[iva])
            for j, k in enumerate(ks):
                scores[j] += float((_knn(x[a], y[a], x[b], k) == y[b]).float().mean())
        k = int(ks[int(np.argmax(scores))])
        chosen[k] = chosen.get(k, 0) + 1
        trt, tet = torch.as_tensor(tr), torch.as_tensor(te)
        accs.append(float((_knn(x[trt], y[trt], x[tet], k) == y[tet]).float().mean()))
    return {
        "accuracy": float(np.mean(accs)),
        "std": float(np.std(accs)),
        "fold_accuracies": accs,
        "ks_chosen": chosen,
    }


def label_recall_at_k(
    queries: Tensor,
    keys: Tensor,
    query_labels: Tensor,
    key_labels: Tensor,
    *,
    ks: Sequence[int] = (1, 5),
    exclude_self: bool = False,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """R@k where a hit is any key with the query's label (cosine ranking).

    Args:
        queries: (Q, D); keys: (K, D) (the same rows as ``queries`` with ``exclude_self``).
        query_labels: (Q,); key_labels: (K,) integer labels.
        ks: the cut-offs.
        exclude_self: queries and keys are one set: a query never retrieves its own row.

    Returns:
        ``{"recall@k": fraction of queries with a hit in their top k, "mrr": mean reciprocal
        rank of the first hit, "chance@1": the expected R@1 of a random ranking}``.
    """
    # float64 on the CPU: queries and keys may come from different devices (a GPU text tower)
    q = F.normalize(queries.detach().cpu().double(), dim=1)
    k_ = F.normalize(keys.detach().cpu().double(), dim=1)
    ql = torch.as_tensor(query_labels).reshape(-1).long().cpu()
    kl = torch.as_tensor(key_labels).reshape(-1).long().cpu()
    if exclude_self and q.shape[0] != k_.shape[0]:
        raise ValueError("exclude_self needs queries and keys to be the same rows.")
    ranks = []
    for s in range(0, q.shape[0], chunk_size):
        sim = q[s : s + chunk_size] @ k_.T
        hit = ql[s : s + chunk_size, None] == kl[None, :]
        if exclude_self:
            rows = torch.arange(sim.shape[0])
            sim[rows, rows + s] = float("-inf")
            hit[rows, rows + s] = False
        if not bool(hit.any(1).all()):
            raise ValueError("a query has no key with its label, so it has no rank.")
        best = sim.masked_fill(~hit, float("-inf")).amax(1, keepdim=True)
        ranks.append((sim > best).sum(1).double() + 1.0)
    r = torch.cat(ranks)
    out = {f"recall@{k}": float((r <= k).double().mean()) for k in ks}
    out["mrr"] = float(r.reciprocal().mean())
    n_keys = k_.shape[0] - (1 if exclude_self else 0)
    per_query = (ql[:, None] == kl[None, :]).sum(1).double() - (1.0 if exclude_self else 0.0)
    out["chance@1"] = float((per_query / n_keys).mean())
    return out


def pitch_averaged_embeddings(
    embed: Callable[[AudioBatch], Tensor],
    audio: AudioBatch,
    semitones: Sequence[float] = (-2.0, 0.0, 2.0),
) -> Tensor:
    """Test-time augmentation over pitch: the mean of a clip's unit-length embeddings with its
    waveform shifted by each of ``semitones`` (resampling by ``2^(s/12)``, the training view
    :class:`~contrastkit.augment.audio.PitchShift`), normalised again.

    Args:
        embed: AudioBatch of waveforms → (N, D) embeddings (e.g. a CLAP recipe's
            ``embed_audio``, batched).
        audio: (N, T) waveforms. Clips that a shift lengthens are never cut: the batch is
            padded first.
        semitones: the shifts; ``(0,)`` is plain embedding (normalised).

    Returns:
        (N, D) float32 unit-length embeddings on the CPU.

    Example:
        >>> b = AudioBatch.from_clips([torch.randn(800), torch.randn(500)], 16000)
        >>> z = pitch_averaged_embeddings(lambda a: a.values[:, :4], b, (-1.0, 1.0))
        >>> tuple(z.shape)
        (2, 4)
    """
    from contrastkit.augment.audio import speed_perturb

    if not audio.is_wave:
        raise ValueError(
            "pitch_averaged_embeddings shifts waveforms (N, T); these clips hold frame "
            "features, so pass the waveforms (the encoder's front end makes the features)."
        )
    if not len(semitones):
        raise ValueError("semitones needs at least one shift (0 for the clip as it is).")
    total: Tensor | None = None
    for s in semitones:
        r = 2.0 ** (float(s) / 12.0)
        b = audio
        if r != 1.0:
            t = int(audio.values.shape[1])
            need = int(math.floor((t - 1) / r)) + 1
            if need > t:
                b = b.with_values(F.pad(b.values, (0, need - t)), b.lengths)
            b = speed_perturb(b, torch.full((len(b),), r, dtype=torch.float64))
        z = F.normalize(embed(b).detach().float().cpu(), dim=1)
        total = z if total is None else total + z
    assert total is not None
    return F.normalize(total, dim=1)
