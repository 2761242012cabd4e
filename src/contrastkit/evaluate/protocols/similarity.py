"""Similarity protocol: Pearson and Spearman correlation of cosine similarities with human
similarity scores (Lee corpus matrix, or STS-style scored pairs), beside baseline features."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.evaluate.protocols.base import (
    Protocol,
    ProtocolResult,
    check_baseline,
    check_features,
)
from contrastkit.evaluate.text import similarity_correlation

__all__ = ["SimilarityProtocol"]


def _correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Spearman's ρ and Pearson's r (scipy.stats) of two 1-D float64 arrays; NaN for both when
    either side is constant (without scipy's ConstantInputWarning)."""
    from scipy.stats import pearsonr, spearmanr

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"spearman": float("nan"), "pearson": float("nan")}
    return {
        "spearman": float(spearmanr(x, y).statistic),
        "pearson": float(pearsonr(x, y).statistic),
    }


class SimilarityProtocol(Protocol):
    """How well cosine similarities of embeddings follow human similarity judgements.

    Two forms of human scores:

    - a matrix: ``scores`` (N, N) rates every pair of the N rows (the Lee corpus); only the
      upper triangle is read (:func:`~contrastkit.evaluate.similarity_correlation`);
    - scored pairs: ``pairs`` (P, 2) row indices and ``scores`` (P,) one score per pair
      (STS-B, SICK: embed the sentences once, ``pairs[p] = (i, j)`` names the two rows).

    Metrics: ``spearman`` (the headline, as in the STS literature) and ``pearson``. Nothing is
    fitted or selected; chance is 0 for both. Correlations are scipy's ``spearmanr`` and
    ``pearsonr`` in float64 (ties get average ranks); a constant side (collapsed embeddings)
    gives NaN.

    Example:
        >>> import torch
        >>> z = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.5, 0.5]])
        >>> pairs = torch.tensor([[0, 1], [0, 2], [1, 2], [0, 3]])
        >>> r = SimilarityProtocol().evaluate(z, torch.tensor([5.0, 0.0, 0.5, 3.0]), pairs=pairs)
        >>> r.metrics["spearman"], r.baseline
        (1.0, {'spearman': 0.0, 'pearson': 0.0})
    """

    name = "similarity"
    labels: ClassVar[dict[str, str]] = {
        "spearman": "Spearman correlation",
        "pearson": "Pearson correlation",
    }

    def evaluate(
        self,
        features: Tensor,
        scores: Tensor,
        *,
        pairs: Tensor | None = None,
        baseline_features: Tensor | None = None,
        baseline_name: str = "baseline",
        split: str = "test",
    ) -> ProtocolResult:
        """Correlate cosine similarities with human scores.

        Args:
            features: (N, D) embeddings of the rows being rated.
            scores: (N, N) pair scores when ``pairs`` is None, else (P,) one per pair.
            pairs: (P, 2) integer row indices of the scored pairs.
            baseline_features: (N, D') the baseline's features of the same rows (TF-IDF).
            baseline_name: the baseline in words.
            split: the name of the split the rows come from.
        """
        features = check_features(features, "features")
        n = features.shape[0]
        scores = torch.as_tensor(scores)
        if pairs is not None:
            pairs = torch.as_tensor(pairs)
            if pairs.dim() != 2 or pairs.shape[1] != 2 or pairs.is_floating_point():
                raise ValueError(
                    f"pairs must be an integer tensor of shape (P, 2), two row indices per "
                    f"scored pair, got dtype {pairs.dtype} shape {tuple(pairs.shape)}."
                )
            pairs = pairs.long().cpu()
            if pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= n):
                raise ValueError(
                    f"pairs hold row indices outside 0..{n - 1}; they index the rows of features."
                )
            if scores.shape != (pairs.shape[0],):
                raise ValueError(
                    f"with pairs, scores must have shape (P,) = ({pairs.shape[0]},), one score per "
                    f"pair, got {tuple(scores.shape)}."
                )
            if pairs.shape[0] < 3:
                raise ValueError(
                    f"a correlation needs at least 3 scored pairs, got {pairs.shape[0]}."
                )
            if not bool(torch.isfinite(scores.double()).all()):
                raise ValueError("scores hold NaN or infinite values; drop those pairs.")
        elif scores.dim() == 1:
            raise ValueError(
                "scores is 1-D but no pairs were given; give pairs=(P, 2) row indices for scored "
                "pairs, or scores as an (N, N) matrix rating every pair of rows."
            )
        baseline = check_baseline(
            {"baseline_features": baseline_features}, {"baseline_features": features}
        )
        metrics = self._figures(features, scores, pairs)
        n_pairs = int(pairs.shape[0]) if pairs is not None else n * (n - 1) // 2
        details: dict[str, Any] = {"rows": n, "pairs": n_pairs}
        chance = {"spearman": 0.0, "pearson": 0.0}
        if baseline is None:
            return ProtocolResult(self.name, split, metrics, chance, "chance", "none", details)
        base = self._figures(baseline["baseline_features"], scores, pairs)
        return ProtocolResult(
            self.name, split, metrics, base, baseline_name, "none", details, {"chance": chance}
        )

    @staticmethod
    def _figures(x: Tensor, scores: Tensor, pairs: Tensor | None) -> dict[str, float]:
        if pairs is None:
            out = similarity_correlation(x, scores)
            return {"spearman": out["spearman"], "pearson": out["pearson"]}
        z = F.normalize(x.double(), dim=1).cpu()
        cos = (z[pairs[:, 0]] * z[pairs[:, 1]]).sum(1).numpy()
        return _correlations(cos, scores.double().cpu().numpy())
