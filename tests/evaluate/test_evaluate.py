"""Evaluation: kNN against a loop, metrics against references (PML, scikit-learn), probes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contrastkit.evaluate import (
    alignment,
    classification_report,
    collapse_stats,
    effective_rank,
    extract_features,
    knn_accuracies,
    knn_accuracy,
    knn_predict,
    knn_scores,
    linear_probe,
    map_at_r,
    precision_at_k,
    recall_at_k,
    uniformity,
)


def _clusters(n_per=20, c=4, d=8, noise=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g) * 2
    y = torch.arange(c).repeat_interleave(n_per)
    x = centers[y] + noise * torch.randn(len(y), d, generator=g)
    return x, y


def test_knn_scores_match_explicit_loop():
    x, y = _clusters()
    q = torch.randn(7, 8, generator=torch.Generator().manual_seed(3))
    k, t = 5, 0.07
    got = knn_scores(x, y, q, k=k, temperature=t, chunk_size=3)
    xn = x / x.norm(dim=1, keepdim=True)
    for i in range(q.shape[0]):
        qi = q[i] / q[i].norm()
        sims = [(float(qi @ xn[j]), j) for j in range(len(xn))]
        sims.sort(reverse=True)
        expect = [0.0] * 4
        for s, j in sims[:k]:
            expect[int(y[j])] += math.exp(s / t)
        torch.testing.assert_close(got[i], torch.tensor(expect), rtol=1e-4, atol=1e-4)


def test_knn_accuracies_equal_one_search_per_k():
    g = torch.Generator().manual_seed(3)
    train, query = torch.randn(300, 8, generator=g), torch.randn(70, 8, generator=g)
    y_train, y_query = (
        torch.randint(0, 4, (300,), generator=g),
        torch.randint(0, 4, (70,), generator=g),
    )
    ks = (1, 7, 50, 400)  # 400 > N: capped like knn_accuracy
    accs = knn_accuracies(train, y_train, query, y_query, ks=ks, temperature=0.2, chunk_size=32)
    for k in ks:
        assert accs[k] == knn_accuracy(train, y_train, query, y_query, k=k, temperature=0.2)
    assert len(set(accs.values())) > 1  # the ks really differ on this data
    with pytest.raises(ValueError, match="ks is empty"):
        knn_accuracies(train, y_train, query, y_query, ks=())


def test_knn_leave_one_out_excludes_self():
    x, y = _clusters(noise=0.0)  # duplicates: each point's nearest other point is its twin
    y_flipped = y.clone()
    y_flipped[0] = 3
    pred = knn_predict(x, y_flipped, x, k=1, exclude_self=True)
    assert int(pred[0]) == int(y[0])  # its own (flipped) label was not used


def test_classification_report_matches_sklearn():
    from sklearn.metrics import f1_score, precision_score, recall_score

    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 5, (200,), generator=g)
    p = torch.where(torch.rand(200, generator=g) < 0.7, t, torch.randint(0, 5, (200,), generator=g))
    r = classification_report(p, t, 5)
    assert r["accuracy"] == pytest.approx(float((p == t).float().mean()))
    assert r["macro_f1"] == pytest.approx(f1_score(t, p, average="macro"))
    assert r["macro_precision"] == pytest.approx(precision_score(t, p, average="macro"))
    assert r["macro_recall"] == pytest.approx(recall_score(t, p, average="macro"))
    assert r["confusion_matrix"].sum() == 200 and np.trace(r["confusion_matrix"]) == int(
        (p == t).sum()
    )


def test_retrieval_metrics_match_pytorch_metric_learning():
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    x, y = _clusters(n_per=15, c=5, noise=1.5, seed=1)
    calc = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r"),
        avg_of_avgs=False,
        k=None,
        knn_func=CustomKNN(CosineSimilarity()),
    )
    ref = calc.get_accuracy(x.double(), y, x.double(), y, ref_includes_query=True)
    assert precision_at_k(x, y, 1) == pytest.approx(ref["precision_at_1"], abs=1e-6)
    assert map_at_r(x, y) == pytest.approx(ref["mean_average_precision_at_r"], abs=1e-6)


def test_map_at_r_hand_example():
    # query 0 (class 0, R=2): neighbours by cosine are 1 (hit), 2 (miss): AP = (1/1)/2 = 0.5
    z = torch.tensor([[1.0, 0.0], [0.95, 0.3], [0.9, 0.45], [0.0, 1.0], [0.1, 1.0]])
    y = torch.tensor([0, 0, 1, 0, 1])
    zn = torch.nn.functional.normalize(z, dim=1)
    aps = []
    for i in range(5):
        r = int((y == y[i]).sum()) - 1
        order = [j for j in torch.argsort(zn @ zn[i], descending=True).tolist() if j != i][:r]
        hits = [int(y[j] == y[i]) for j in order]
        aps.append(sum(h * sum(hits[: n + 1]) / (n + 1) for n, h in enumerate(hits)) / r)
    assert map_at_r(z, y) == pytest.approx(sum(aps) / len(aps))


def test_recall_at_k_paired():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(50, 16, generator=g)
    assert recall_at_k(q, q + 0.01 * torch.randn(50, 16, generator=g))["R@1"] == 1.0
    r = recall_at_k(q, torch.randn(50, 16, generator=g), ks=(1, 50))
    assert r["R@50"] == 1.0 and r["R@1"] < 0.2


def test_alignment_uniformity_analytic():
    x = torch.nn.functional.normalize(torch.randn(10, 4), dim=1)
    assert alignment(x, x) == pytest.approx(0.0, abs=1e-6)
    assert alignment(x, -x) == pytest.approx(4.0, abs=1e-5)  # |x − (−x)|² = 4
    two = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert uniformity(two) == pytest.approx(-8.0, abs=1e-5)  # exp(−2·4)


def test_collapse_stats():
    s = collapse_stats(torch.randn(2000, 32, generator=torch.Generator().manual_seed(0)))
    assert s["std_ratio"] == pytest.approx(1.0, abs=0.05) and s["effective_rank"] > 30
    assert collapse_stats(torch.ones(100, 32))["std_ratio"] < 1e-6
    low_rank = torch.randn(500, 2) @ torch.randn(2, 32)
    assert effective_rank(low_rank) < 2.01


def test_linear_probe_selects_penalty_on_train_only():
    x, y = _clusters(n_per=60, c=3, d=6, noise=1.0)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:120], perm[120:]
    res = linear_probe(x[tr], y[tr], x[te], y[te])
    assert res["accuracy"] > 0.85
    assert res["probabilities"].shape == (60, 3)
    # the chosen penalty does not depend on the test labels
    res2 = linear_probe(x[tr], y[tr], x[te], torch.zeros_like(y[te]))
    assert res2["weight_decay"] == res["weight_decay"]


def test_extract_features_restores_mode():
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4), torch.nn.Dropout(0.5))
    enc.train()
    imgs = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    a = extract_features(enc, imgs, batch_size=3)
    b = extract_features(enc, imgs, batch_size=10)
    torch.testing.assert_close(a, b)  # eval mode: dropout off, batch size irrelevant
    assert enc.training


def test_report_maps_of_small_sets_are_drawn_or_said_to_be_too_few(tmp_path):
    import warnings as _w

    from contrastkit.evaluate.report import write_report

    feats, labels = torch.randn(4, 8), torch.tensor([0, 1, 0, 1])
    page = write_report(
        tmp_path / "a.html", metrics={}, features=feats, labels=labels, maps=("tsne", "umap")
    )
    assert "too few for a map" in page.read_text()
    feats, labels = torch.randn(12, 8), torch.arange(12) % 3
    with _w.catch_warnings():
        _w.simplefilter("error", UserWarning)  # no n_neighbors / perplexity complaints
        page = write_report(
            tmp_path / "b.html", metrics={}, features=feats, labels=labels, maps=("tsne", "umap")
        )
    html = page.read_text()
    assert 'alt="tsne"' in html and 'alt="umap"' in html and "too few" not in html
