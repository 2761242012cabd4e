"""Text evaluation: similarity correlation vs scipy and loops, k-fold probes, clustering, TF-IDF."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import scipy.stats
import torch

from contrastkit.evaluate import (
    clustering_scores,
    cross_validated_probe,
    linear_probe,
    similarity_correlation,
    tfidf_features,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The probes fit tiny problems; a thread pool only adds overhead (and stalls badly on a
    busy machine). Results do not depend on it: the reference loops run under the same setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _lee_like(n=50, d=16, seed=0):
    """n documents and a symmetric human matrix of 1..5 ratings (many ties), like Lee's."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g)
    zn = torch.nn.functional.normalize(z, dim=1)
    noisy = zn @ zn.T + 0.3 * torch.randn(n, n, generator=g)
    human = torch.bucketize(noisy, torch.tensor([-0.4, -0.1, 0.1, 0.4])).float() + 1
    human = torch.triu(human, 1) + torch.triu(human, 1).T
    return z, human


def test_similarity_correlation_matches_scipy_and_a_loop():
    z, human = _lee_like()
    got = similarity_correlation(z, human)
    assert got["pairs"] == 1225  # the Lee corpus: 50 documents, 50·49/2 pairs
    sims, scores = [], []
    for i in range(50):
        for j in range(i + 1, 50):
            a, b = z[i].double(), z[j].double()
            sims.append(float(a @ b / (a.norm() * b.norm())))
            scores.append(float(human[i, j]))
    assert len(set(scores)) <= 5  # heavy ties: average ranks matter
    assert got["pearson"] == pytest.approx(scipy.stats.pearsonr(sims, scores)[0], abs=1e-12)
    assert got["spearman"] == pytest.approx(scipy.stats.spearmanr(sims, scores)[0], abs=1e-12)
    # Pearson by its textbook formula, as a loop
    mx, my = sum(sims) / len(sims), sum(scores) / len(scores)
    cov = sum((x - mx) * (y - my) for x, y in zip(sims, scores))
    var_x = sum((x - mx) ** 2 for x in sims)
    var_y = sum((y - my) ** 2 for y in scores)
    assert got["pearson"] == pytest.approx(cov / math.sqrt(var_x * var_y), abs=1e-12)
    assert 0.3 < got["pearson"] < 0.95


def test_only_the_upper_triangle_is_read():
    z, human = _lee_like(n=12, seed=1)
    upper_only = torch.triu(human, 1) + torch.tril(torch.full_like(human, 99.0))
    assert similarity_correlation(z, upper_only) == similarity_correlation(z, human)


def test_analytic_correlations():
    z = torch.randn(20, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    zn = torch.nn.functional.normalize(z, dim=1)
    sim = zn @ zn.T
    monotone = similarity_correlation(z, torch.exp(5 * sim))  # increasing, non-linear
    assert monotone["spearman"] == pytest.approx(1.0) and monotone["pearson"] < 0.999
    reverse = similarity_correlation(z, -3 * sim)
    assert reverse["pearson"] == pytest.approx(-1.0) and reverse["spearman"] == pytest.approx(-1.0)
    assert math.isnan(similarity_correlation(torch.ones(5, 3), sim[:5, :5])["pearson"])


def test_similarity_correlation_errors():
    z, human = _lee_like(n=6)
    with pytest.raises(ValueError, match=r"\(N, N\) = \(6, 6\)"):
        similarity_correlation(z, human[:5, :5])
    bad = human.clone()
    bad[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        similarity_correlation(z, bad)
    with pytest.raises(ValueError, match="at least 3"):
        similarity_correlation(z[:2], human[:2, :2])


def _classes(n_per=40, c=3, d=6, noise=1.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g) * 2
    y = torch.arange(c).repeat_interleave(n_per)
    return centers[y] + noise * torch.randn(len(y), d, generator=g), y


def test_cross_validated_probe_equals_a_loop_over_stratified_folds():
    from sklearn.model_selection import StratifiedKFold

    x, y = _classes(n_per=15, noise=2.0)
    opts = {"weight_decays": (1e-4, 1e-1), "max_iter": 40}
    got = cross_validated_probe(x, y, folds=3, seed=3, **opts)
    accs, wds = [], []
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=3).split(np.zeros(len(y)), y):
        assert sorted(np.bincount(y[te].numpy()).tolist()) == [5, 5, 5]  # stratified
        tr, te = torch.from_numpy(tr), torch.from_numpy(te)
        res = linear_probe(x[tr], y[tr], x[te], y[te], seed=3, **opts)
        accs.append(res["accuracy"])
        wds.append(res["weight_decay"])
    assert got["fold_accuracies"] == accs and got["weight_decays"] == wds
    assert got["accuracy"] == pytest.approx(sum(accs) / 3)
    assert got["std"] == pytest.approx(math.sqrt(sum((a - sum(accs) / 3) ** 2 for a in accs) / 3))
    assert 0.6 < got["accuracy"] < 1.0


def test_penalty_is_chosen_without_the_test_fold():
    x, y = _classes(seed=1)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:90], perm[90:]
    opts = {"weight_decays": (1e-4, 1e-2, 1.0), "max_iter": 50}
    base = cross_validated_probe(x, y, folds=[(tr, te)], **opts)  # explicit folds
    direct = linear_probe(x[tr], y[tr], x[te], y[te], **opts)
    assert base["fold_accuracies"] == [direct["accuracy"]]
    shuffled_x = x.clone()
    shuffled_x[te] = torch.randn(len(te), x.shape[1])  # the test rows change completely
    changed = cross_validated_probe(shuffled_x, y, folds=[(tr, te)], **opts)
    assert changed["weight_decays"] == base["weight_decays"]
    assert base["std"] == 0.0 and len(base["fold_accuracies"]) == 1


def test_cross_validated_probe_errors():
    x, y = _classes(n_per=5)
    with pytest.raises(ValueError, match="both train and test"):
        cross_validated_probe(x, y, folds=[(torch.arange(10), torch.arange(5, 15))])
    with pytest.raises(ValueError, match="≥ 2"):
        cross_validated_probe(x, y, folds=1)
    with pytest.raises(ValueError, match="fewer than folds"):
        cross_validated_probe(x, y, folds=6)
    y_rare = y.clone()
    y_rare[0] = 7
    with pytest.raises(ValueError, match="single example"):
        cross_validated_probe(x, y_rare, folds=2)
    with pytest.raises(ValueError, match="outside"):
        cross_validated_probe(x, y, folds=[(torch.arange(10), torch.tensor([99]))])
    with pytest.raises(ValueError, match="integer tensor of shape"):
        cross_validated_probe(x, y.float(), folds=2)


def _nmi_ari_loop(a, b):
    """NMI (arithmetic mean of entropies) and ARI from the contingency table, by loops."""
    n = len(a)
    pairs = Counter(zip(a, b))
    ca, cb = Counter(a), Counter(b)
    mi = sum(c / n * math.log(c * n / (ca[i] * cb[j])) for (i, j), c in pairs.items())
    ha = -sum(c / n * math.log(c / n) for c in ca.values())
    hb = -sum(c / n * math.log(c / n) for c in cb.values())
    nmi = mi / ((ha + hb) / 2)
    comb = lambda m: m * (m - 1) / 2  # noqa: E731
    index = sum(comb(c) for c in pairs.values())
    sa, sb = sum(comb(c) for c in ca.values()), sum(comb(c) for c in cb.values())
    expected = sa * sb / comb(n)
    ari = (index - expected) / ((sa + sb) / 2 - expected)
    return nmi, ari


def test_clustering_scores_match_a_loop_on_kmeans_labels():
    from sklearn.cluster import KMeans

    x, y = _classes(noise=2.0, seed=2)
    got = clustering_scores(x, y, seed=5)
    xn = torch.nn.functional.normalize(x, dim=1).numpy().astype(np.float64)
    pred = KMeans(n_clusters=3, n_init=10, random_state=5).fit_predict(xn)
    nmi, ari = _nmi_ari_loop(y.tolist(), pred.tolist())
    assert got["nmi"] == pytest.approx(nmi, abs=1e-10) and got["ari"] == pytest.approx(
        ari, abs=1e-10
    )
    assert 0.1 < got["ari"] < 0.99


def test_clustering_scores_analytic():
    x, y = _classes(noise=0.05)
    perfect = clustering_scores(x, y)
    assert perfect == {"nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}
    assert clustering_scores(x, (y + 1) % 3) == perfect  # numbering does not matter
    one = clustering_scores(x, y, n_clusters=1)  # one cluster carries no information
    assert one["nmi"] == pytest.approx(0.0) and one["ari"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="one label per"):
        clustering_scores(x, y[:-1])


def _tfidf_loop(fit_docs, docs):
    tok = [[w for w in d.lower().split() if len(w) >= 2] for d in fit_docs]
    vocab = sorted({w for t in tok for w in t})
    n = len(fit_docs)
    idf = {w: math.log((1 + n) / (1 + sum(w in t for t in tok))) + 1 for w in vocab}
    rows = []
    for d in docs:
        counts = Counter(w for w in d.lower().split() if len(w) >= 2)
        v = [(1 + math.log(counts[w])) * idf[w] if counts[w] else 0.0 for w in vocab]
        norm = math.sqrt(sum(a * a for a in v))
        rows.append([a / norm if norm else 0.0 for a in v])
    return vocab, torch.tensor(rows)


def test_tfidf_matches_a_hand_computed_loop():
    train = ["the cat sat on the mat", "the dog sat", "cat cat cat dog"]
    test = ["the cat ran", "unseen words only", "mat mat dog"]
    tr, te = tfidf_features(train, test)
    _, expect_tr = _tfidf_loop(train, train)
    _, expect_te = _tfidf_loop(train, test)
    assert tr.dtype == torch.float32 and tr.shape == (3, 6)  # cat dog mat on sat the
    torch.testing.assert_close(tr, expect_tr.float())
    torch.testing.assert_close(te, expect_te.float())
    assert float(te[1].abs().sum()) == 0.0  # fitted on train only: no column for unseen words
    assert te[0].norm() == pytest.approx(1.0) and te[2].norm() == pytest.approx(1.0)


def test_tfidf_options():
    train = ["the cat sat on the mat", "the dog sat", "cat cat cat dog"]
    (no_stop,) = tfidf_features(train, stop_words="english")
    assert no_stop.shape == (3, 4)  # the, on removed: cat dog mat sat
    (capped,) = tfidf_features(train, max_features=2)
    assert capped.shape == (3, 2)
    (bigrams,) = tfidf_features(train, ngram_range=(1, 2))
    assert bigrams.shape[1] > 6
    with pytest.raises(ValueError, match="lower max_features"):
        tfidf_features(train, train, max_dense_bytes=10)
    with pytest.raises(TypeError, match="list of strings"):
        tfidf_features("just one string")
    with pytest.raises(ValueError, match="no vocabulary"):
        tfidf_features(["the", "a of"], stop_words="english")
