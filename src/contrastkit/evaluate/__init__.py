"""Evaluation of embeddings: kNN, linear probe, retrieval metrics, collapse diagnostics, text
evaluation (similarity correlation, cross-validated probes, clustering, TF-IDF baseline)."""

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
from contrastkit.evaluate.protocols import (
    PROTOCOLS,
    AnomalyProtocol,
    ClassificationProtocol,
    FewShotProtocol,
    Protocol,
    ProtocolResult,
    RankingProtocol,
    RetrievalProtocol,
    SimilarityProtocol,
    default_protocol,
    get_protocol,
)
from contrastkit.evaluate.ranking import (
    average_precision_at_k,
    mrr_at_k,
    ndcg_at_k,
    ranked_recall_at_k,
    retrieval_metrics,
)
from contrastkit.evaluate.text import (
    clustering_scores,
    cross_validated_probe,
    similarity_correlation,
    tfidf_features,
)

__all__ = [
    "DEFAULT_K_GRID",
    "PROTOCOLS",
    "AnomalyProtocol",
    "ClassificationProtocol",
    "FewShotProtocol",
    "Protocol",
    "ProtocolResult",
    "RankingProtocol",
    "RetrievalProtocol",
    "SimilarityProtocol",
    "alignment",
    "average_precision_at_k",
    "classification_report",
    "clustering_scores",
    "collapse_stats",
    "cross_validated_probe",
    "default_protocol",
    "effective_rank",
    "embedding_std",
    "extract_features",
    "fit_logistic",
    "get_protocol",
    "knn_accuracies",
    "knn_accuracy",
    "knn_predict",
    "knn_scores",
    "linear_probe",
    "map_at_r",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranked_recall_at_k",
    "recall_at_k",
    "retrieval_metrics",
    "select_knn_k",
    "similarity_correlation",
    "tfidf_features",
    "uniformity",
]
