"""Evaluation of embeddings: kNN, linear probe, retrieval metrics, collapse diagnostics."""

from contrastkit.evaluate.collapse import collapse_stats, effective_rank, embedding_std
from contrastkit.evaluate.features import extract_features
from contrastkit.evaluate.knn import (
    DEFAULT_K_GRID,
    knn_accuracies,
    knn_accuracy,
    knn_predict,
    knn_scores,
    select_knn_k,
)
from contrastkit.evaluate.linear import fit_logistic, linear_probe
from contrastkit.evaluate.metrics import (
    alignment,
    classification_report,
    map_at_r,
    precision_at_k,
    recall_at_k,
    uniformity,
)

__all__ = [
    "DEFAULT_K_GRID",
    "alignment",
    "classification_report",
    "collapse_stats",
    "effective_rank",
    "embedding_std",
    "extract_features",
    "fit_logistic",
    "knn_accuracies",
    "knn_accuracy",
    "knn_predict",
    "knn_scores",
    "linear_probe",
    "map_at_r",
    "precision_at_k",
    "recall_at_k",
    "select_knn_k",
    "uniformity",
]
