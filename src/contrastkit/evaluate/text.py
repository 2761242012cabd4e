"""Evaluation of text embeddings: human similarity correlation, SentEval-style k-fold probes,
clustering scores and the TF-IDF baseline.

- :func:`similarity_correlation`: Pearson and Spearman correlation between the cosine
  similarities of every document pair and human similarity judgements (e.g. the Lee corpus).
- :func:`cross_validated_probe`: k-fold linear probe (SentEval's protocol for MR, CR, SUBJ,
  MPQA, TREC ...), the penalty chosen inside each training fold.
- :func:`clustering_scores`: NMI and ARI of k-means on the normalised embeddings.
- :func:`tfidf_features`: the TF-IDF bag-of-words baseline every text encoder should beat.

Example:
    >>> import torch
    >>> from contrastkit.evaluate import similarity_correlation
    >>> z = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> human = torch.tensor([[0.0, 5.0, 1.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    >>> similarity_correlation(z, human)["spearman"], similarity_correlation(z, human)["pairs"]
    (1.0, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit._checks import check_embeddings
from contrastkit.evaluate.linear import linear_probe

__all__ = [
    "clustering_scores",
    "cross_validated_probe",
    "similarity_correlation",
    "tfidf_features",
]


def _correlation(fn, x: np.ndarray, y: np.ndarray) -> float:
    """``scipy.stats.pearsonr`` / ``spearmanr`` statistic as a float; NaN (without scipy's
    ConstantInputWarning) when either side is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(fn(x, y).statistic)


def similarity_correlation(embeddings: Tensor, human: Tensor) -> dict[str, float | int]:
    """Correlate embedding cosine similarities with human similarity judgements, pair by pair.

    Every unordered pair i < j contributes one point: (cos(e_i, e_j), human[i, j]), and
    ``scipy.stats.pearsonr`` / ``spearmanr`` correlate the two columns; only the
    upper triangle of ``human`` is read, so a symmetric matrix and one with just the upper
    triangle filled give the same result. For the Lee corpus (Lee, Pincombe & Welsh 2005: 50
    news documents, each pair rated by about ten people) ``human`` is the 50 × 50 matrix of mean
    ratings and there are 50·49/2 = 1,225 pairs; report Pearson (the usual number for Lee) and
    Spearman.

    Args:
        embeddings: (N, D) one embedding per document, N ≥ 3.
        human: (N, N) human similarity scores.

    Returns:
        ``{"pearson": r, "spearman": ρ (ties get average ranks), "pairs": N(N-1)/2}``; a
        correlation is NaN when one side is constant (e.g. collapsed embeddings).

    Example:
        >>> import torch
        >>> z = torch.randn(50, 16, dtype=torch.float64)
        >>> zn = torch.nn.functional.normalize(z, dim=1)
        >>> out = similarity_correlation(z, 2 * (zn @ zn.T) + 1)  # an increasing linear map
        >>> round(out["pearson"], 6), round(out["spearman"], 6), out["pairs"]
        (1.0, 1.0, 1225)
    """
    check_embeddings(embeddings, "embeddings")
    n = embeddings.shape[0]
    human = torch.as_tensor(human)
    if human.shape != (n, n):
        raise ValueError(
            f"human must be an (N, N) = ({n}, {n}) matrix of pair scores matching the "
            f"{n} embeddings row for row, got shape {tuple(human.shape)}."
        )
    if n < 3:
        raise ValueError(
            f"similarity_correlation needs at least 3 documents (3 pairs) for a correlation, "
            f"got {n}."
        )
    iu = torch.triu_indices(n, n, offset=1)
    h = human.double().cpu()[iu[0], iu[1]].numpy()
    if not np.isfinite(h).all():
        raise ValueError(
            "human has NaN or infinite scores in its upper triangle (pairs i < j); fill every "
            "pair's score or drop the documents without judgements."
        )
    from scipy.stats import pearsonr, spearmanr

    z = F.normalize(embeddings.double(), dim=1)
    s = (z @ z.T).cpu()[iu[0], iu[1]].numpy()
    return {
        "pearson": _correlation(pearsonr, s, h),
        "spearman": _correlation(spearmanr, s, h),
        "pairs": int(len(h)),
    }


def _check_folds(folds: Sequence, n: int) -> list[tuple[Tensor, Tensor]]:
    out = []
    for f, fold in enumerate(folds):
        if not isinstance(fold, (tuple, list)) or len(fold) != 2:
            raise ValueError(
                f"folds[{f}] must be a (train_indices, test_indices) pair, got "
                f"{type(fold).__name__}."
            )
        tr, te = (torch.as_tensor(np.asarray(i)).long().flatten() for i in fold)
        if tr.numel() == 0 or te.numel() == 0:
            raise ValueError(f"folds[{f}] has an empty train or test split; give both rows.")
        for name, idx in (("train", tr), ("test", te)):
            if int(idx.min()) < 0 or int(idx.max()) >= n:
                raise ValueError(
                    f"folds[{f}] {name} indices fall outside 0..{n - 1}; folds index the rows "
                    f"of features."
                )
        if np.intersect1d(tr.numpy(), te.numpy()).size:
            raise ValueError(
                f"folds[{f}] puts some rows in both train and test; the test accuracy would be "
                f"optimistic. Make the train and test indices disjoint."
            )
        out.append((tr, te))
    if not out:
        raise ValueError("folds is empty; give an int ≥ 2 or at least one (train, test) pair.")
    return out


def cross_validated_probe(
    features: Tensor,
    labels: Tensor,
    folds: Sequence[tuple[Tensor, Tensor]] | int = 5,
    seed: int = 0,
    *,
    weight_decays: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2),
    val_fraction: float = 0.1,
    max_iter: int = 200,
) -> dict:
    """SentEval-style k-fold linear probe (Conneau & Kiela 2018) on frozen features.

    For each fold, :func:`contrastkit.evaluate.linear_probe` standardises the features with the
    training rows' statistics, chooses the L2 penalty on a held-out ``val_fraction`` of the
    training rows (never the test fold), refits on all training rows and scores the test fold.

    Args:
        features: (N, D) features. labels: (N,) integer class labels.
        folds: an int k (stratified k-fold: ``StratifiedKFold(k, shuffle=True,
            random_state=seed)``) or explicit ``[(train_indices, test_indices), ...]``.
        seed: the fold shuffle and the validation split inside each fold.
        weight_decays, val_fraction, max_iter: as in :func:`linear_probe`.

    Returns:
        ``{"accuracy": mean over folds, "std": standard deviation over folds (ddof=0),
        "fold_accuracies": [...], "weight_decays": [penalty chosen in each fold]}``.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(120, 4, generator=g); y = (x[:, 0] > 0).long()
        >>> out = cross_validated_probe(x, y, folds=3)
        >>> len(out["fold_accuracies"]), out["accuracy"] > 0.9
        (3, True)
    """
    check_embeddings(features, "features")
    labels = torch.as_tensor(labels)
    n = features.shape[0]
    if labels.shape != (n,) or labels.is_floating_point():
        raise ValueError(
            f"labels must be an integer tensor of shape (N,) = ({n},), one class per row of "
            f"features, got dtype {labels.dtype} shape {tuple(labels.shape)}."
        )
    labels = labels.long().cpu()
    features = features.cpu()
    if isinstance(folds, bool):
        raise TypeError("folds must be an int or a list of (train, test) index pairs.")
    if isinstance(folds, int):
        from sklearn.model_selection import StratifiedKFold

        if folds < 2:
            raise ValueError(f"folds must be ≥ 2 for k-fold cross-validation, got {folds}.")
        classes, counts = np.unique(labels.numpy(), return_counts=True)
        if counts.max() < folds:
            raise ValueError(
                f"every class has fewer than folds={folds} examples (largest class: "
                f"{counts.max()}); StratifiedKFold cannot split them. Use fewer folds."
            )
        if counts.min() < 2:
            rare = classes[counts < 2].tolist()[:5]
            raise ValueError(
                f"class(es) {rare} have a single example; a fold cannot both train on and "
                f"test such a class. Drop or merge the rare classes."
            )
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        folds = [
            (torch.from_numpy(tr), torch.from_numpy(te))
            for tr, te in splitter.split(np.zeros(n), labels.numpy())
        ]
    fold_list = _check_folds(folds, n)
    accs, penalties = [], []
    for tr, te in fold_list:
        res = linear_probe(
            features[tr],
            labels[tr],
            features[te],
            labels[te],
            weight_decays=weight_decays,
            val_fraction=val_fraction,
            seed=seed,
            max_iter=max_iter,
        )
        accs.append(res["accuracy"])
        penalties.append(res["weight_decay"])
    return {
        "accuracy": float(np.mean(accs)),
        "std": float(np.std(accs)),
        "fold_accuracies": accs,
        "weight_decays": penalties,
    }


def clustering_scores(
    embeddings: Tensor, labels: Tensor, n_clusters: int | None = None, seed: int = 0
) -> dict[str, float]:
    """k-means on the L2-normalised embeddings, scored against the true labels.

    Args:
        embeddings: (N, D). labels: (N,) integer classes.
        n_clusters: k of k-means (default: the number of distinct labels).
        seed: k-means initialisation (``KMeans(n_clusters, n_init=10, random_state=seed)``).

    Returns:
        ``{"nmi": normalized mutual information (arithmetic normalisation, scikit-learn's
        default), "ari": adjusted Rand index}``; both are 1 for a perfect clustering and do not
        depend on how clusters are numbered.

    Example:
        >>> import torch
        >>> z = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> clustering_scores(z, torch.tensor([0, 0, 1, 1]))
        {'nmi': 1.0, 'ari': 1.0}
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    check_embeddings(embeddings, "embeddings")
    y = np.asarray(torch.as_tensor(labels).cpu()).ravel()
    n = embeddings.shape[0]
    if y.shape[0] != n:
        raise ValueError(
            f"labels has {y.shape[0]} entries but embeddings has {n} rows; give one label per row."
        )
    k = int(n_clusters) if n_clusters is not None else int(np.unique(y).size)
    if not 1 <= k <= n:
        raise ValueError(f"n_clusters must lie in 1..{n} (the number of rows), got {k}.")
    z = F.normalize(embeddings.float(), dim=1).cpu().numpy().astype(np.float64)
    pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(z)
    return {
        "nmi": float(normalized_mutual_info_score(y, pred)),
        "ari": float(adjusted_rand_score(y, pred)),
    }


def tfidf_features(
    fit_texts: Sequence[str],
    *texts: Sequence[str],
    max_features: int | None = 50_000,
    stop_words: str | None = None,
    sublinear_tf: bool = True,
    max_dense_bytes: int = 4 * 2**30,
    **tfidf_kwargs,
) -> tuple[Tensor, ...]:
    """TF-IDF features fitted on ``fit_texts`` only, for it and for each further list of texts.

    scikit-learn's ``TfidfVectorizer`` (vocabulary and IDF from ``fit_texts``; words seen only
    in ``texts`` are ignored), sublinear TF (1 + log tf) by default, each row L2-normalised so
    that dot products are cosine similarities (a text with no known word stays a zero row).

    The result is dense: (rows × vocabulary) float32. That suits probes and retrieval baselines
    on up to tens of thousands of texts; for big vocabularies or corpora a sparse path (the
    vectorizer's scipy.sparse output used directly) would be needed, and ``max_dense_bytes``
    stops a dense matrix from exhausting memory.

    Args:
        fit_texts: texts that define the vocabulary and IDF (the training split).
        *texts: further lists of texts to transform (validation, test, queries).
        max_features: keep the most frequent terms (default 50,000; None = all).
        stop_words: ``"english"`` drops scikit-learn's English stop words; None keeps all.
        sublinear_tf: replace tf by 1 + log(tf).
        max_dense_bytes: refuse to build a dense matrix larger than this.
        **tfidf_kwargs: any other ``TfidfVectorizer`` option (ngram_range, min_df, ...).

    Returns:
        One (len(texts_i), V) float32 tensor per input, ``fit_texts`` first.

    Example:
        >>> train, test = tfidf_features(["a cat sat", "a dog ran"], ["the cat ran"])
        >>> train.shape, test.shape, round(float(test.norm()), 4)
        (torch.Size([2, 4]), torch.Size([1, 4]), 1.0)
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    for name, group in (
        ("fit_texts", fit_texts),
        *((f"texts[{i}]", t) for i, t in enumerate(texts)),
    ):
        if isinstance(group, str) or not isinstance(group, Sequence):
            raise TypeError(
                f"{name} must be a list of strings (one per document), got "
                f"{type(group).__name__}; wrap a single text as [text]."
            )
    if len(fit_texts) == 0:
        raise ValueError("fit_texts is empty; the vocabulary and IDF need at least one text.")
    vectorizer = TfidfVectorizer(
        max_features=max_features, stop_words=stop_words, sublinear_tf=sublinear_tf, **tfidf_kwargs
    )
    try:
        fitted = vectorizer.fit_transform(list(fit_texts))
    except ValueError as err:
        raise ValueError(
            f"TF-IDF found no vocabulary in fit_texts ({err}); the texts are empty or only stop "
            f"words: drop stop_words or check the input."
        ) from err
    vocab = fitted.shape[1]
    rows = len(fit_texts) + sum(len(t) for t in texts)
    if rows * vocab * 4 > max_dense_bytes:
        raise ValueError(
            f"dense TF-IDF features would take {rows * vocab * 4 / 2**30:.1f} GiB ({rows} texts × "
            f"{vocab} terms); lower max_features, or use sklearn's TfidfVectorizer sparse output "
            f"directly (or raise max_dense_bytes if the memory is there)."
        )
    mats = [fitted, *(vectorizer.transform(list(t)) for t in texts)]
    return tuple(F.normalize(torch.from_numpy(m.toarray().astype(np.float32)), dim=1) for m in mats)
