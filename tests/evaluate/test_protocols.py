"""Evaluation protocols on real data (scikit-learn's digits, contrastkit's fixed 70/30 split).

The embedding under test is a fixed, deterministic one: PCA (16 components) fitted on the
training rows only; the baseline is raw pixels. Each protocol is checked for figures in range,
the baseline measured and printed beside them, analytic cases (a perfect embedding scores 1; a
random one scores chance within a tolerance across seeds), and against explicit loops where the
protocol computes something itself.

Ranking uses a semi-synthetic interaction matrix built from digits: users are training digits,
items are test digits, each user interacts with a few random items of its own class (half of
them held out as test interactions).
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from contrastkit.data import load_digits
from contrastkit.evaluate.protocols import (
    PROTOCOLS,
    AnomalyProtocol,
    ClassificationProtocol,
    FewShotProtocol,
    ProtocolResult,
    RankingProtocol,
    RetrievalProtocol,
    SimilarityProtocol,
    default_protocol,
    get_protocol,
)
from contrastkit.evaluate.protocols.retrieval import first_hit_ranks, partner_ranks

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits():
    """Raw pixels in [0, 1], PCA-16 embeddings fitted on the training rows, and labels."""
    data = load_digits()
    pix_tr = data.train.images.flatten(1).double() / 255.0
    pix_te = data.test.images.flatten(1).double() / 255.0
    mean = pix_tr.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(pix_tr - mean, full_matrices=False)
    proj = vh[:16].T
    return SimpleNamespace(
        data=data,
        pix_tr=pix_tr.float(),
        pix_te=pix_te.float(),
        z_tr=((pix_tr - mean) @ proj).float(),
        z_te=((pix_te - mean) @ proj).float(),
        y_tr=data.train.labels,
        y_te=data.test.labels,
        project=lambda pix: ((pix.double() - mean) @ proj).float(),
    )


def _one_hot(labels: torch.Tensor, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """A perfect embedding: one-hot of the class, optionally with small noise."""
    z = torch.nn.functional.one_hot(labels, int(labels.max()) + 1).float()
    g = torch.Generator().manual_seed(seed)
    return z + noise * torch.randn(z.shape, generator=g)


def _random(n: int, seed: int, d: int = 16) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _check_result(result: ProtocolResult, name: str, baseline_name: str) -> None:
    """Schema: baseline measured under the metrics' keys, flat JSON-ready dict."""
    assert result.protocol == name
    assert result.baseline_name == baseline_name
    assert result.metrics and result.baseline
    assert set(result.baseline) <= set(result.metrics)
    assert result.chosen_on in ("val", "none")
    flat = result.to_dict()
    assert not any(isinstance(v, dict) for v in flat.values())
    json.dumps(flat, allow_nan=False)
    assert flat["protocol"] == name and flat["baseline_name"] == baseline_name
    for key, value in result.metrics.items():
        assert flat[f"metrics.{key}"] == pytest.approx(value)


# ----------------------------------------------------------------------------- registry


def test_registry_names_and_errors():
    assert sorted(PROTOCOLS) == sorted(
        [
            "classification",
            "retrieval",
            "similarity",
            "ranking",
            "anomaly",
            "few_shot",
            "graph_classification",
            "molecule",
            "tabular",
            "audio",
        ]
    )
    for name, cls in PROTOCOLS.items():
        assert cls.name == name
        assert isinstance(get_protocol(name), cls)
    with pytest.raises(ValueError, match=r"valid: \[.*'few_shot'.*\].*Did you mean 'few_shot'"):
        get_protocol("few-shot")
    with pytest.raises(ValueError, match=r"no option\(s\) \['kk'\].*valid options: \['ks'"):
        get_protocol("classification", kk=(1,))
    assert get_protocol("few_shot", n_way=3, shots=(2,)).shots == (2,)
    with pytest.raises(ValueError, match="valid options: none"):
        get_protocol("similarity", ks=(1,))


def test_default_protocol(digits):
    assert default_protocol(digits.data) == "classification"  # DataSplits: labels on .train
    assert default_protocol(SimpleNamespace(protocol="ranking", labels=[1])) == "ranking"
    assert default_protocol(SimpleNamespace(labels=None, scores=[0.3])) == "similarity"
    assert default_protocol(SimpleNamespace(similarity=torch.eye(3))) == "similarity"
    assert default_protocol(SimpleNamespace(interactions=torch.ones(2, 2))) == "ranking"
    assert default_protocol(SimpleNamespace(labels=None, positives=["a"])) == "retrieval"
    with pytest.raises(ValueError, match="valid:"):
        default_protocol(SimpleNamespace(protocol="knn"))
    with pytest.raises(ValueError, match="cannot tell which protocol"):
        default_protocol(SimpleNamespace(texts=["a"]))


def test_result_format_and_flat_dict():
    r = ProtocolResult(
        "few_shot",
        "test",
        {"5way_1shot_accuracy": 0.9, "5way_1shot_ci95": 0.01},
        {"5way_1shot_accuracy": 0.8, "5way_1shot_ci95": 0.02},
        "raw pixels",
        "none",
        {"episodes": 10, "nested": {"a": float("nan")}},
        {"chance": {"5way_1shot_accuracy": 0.2, "5way_1shot_ci95": 0.0}},
    )
    assert r.format() == (
        "5-way 1-shot accuracy, test: 0.900 ± 0.010 (raw pixels 0.800 ± 0.020, chance 0.200)"
    )
    flat = r.to_dict()
    assert flat["details.nested.a"] is None and flat["chance.5way_1shot_ci95"] == 0.0
    json.dumps(flat, allow_nan=False)


# ----------------------------------------------------------------------------- classification


def test_classification_digits_pca_vs_raw_pixels(digits, capsys):
    protocol = ClassificationProtocol(weight_decays=(1e-4, 1e-2), max_iter=100)
    r = protocol.evaluate(
        digits.z_tr,
        digits.y_tr,
        digits.z_te,
        digits.y_te,
        baseline_train=digits.pix_tr,
        baseline_test=digits.pix_te,
        baseline_name="raw pixels",
    )
    _check_result(r, "classification", "raw pixels")
    assert r.chosen_on == "val" and r.split == "test"
    assert list(r.metrics)[0] == "knn_accuracy"
    for figures in (r.metrics, r.baseline):
        assert all(0.0 <= v <= 1.0 for v in figures.values())
        assert figures["knn_accuracy"] > 0.9 and figures["linear_probe_accuracy"] > 0.85
        assert figures["map_at_r"] > 0.5
    majority = int(torch.bincount(digits.y_tr).argmax())
    assert r.other_baselines["chance"]["knn_accuracy"] == pytest.approx(
        float((digits.y_te == majority).float().mean())
    )
    assert r.details["k"] in protocol.ks and r.details["baseline"]["k"] in protocol.ks
    assert r.details["n_train"] + r.details["n_val"] == len(digits.y_tr)
    cm = torch.tensor(r.details["confusion_matrix"])
    assert cm.shape == (10, 10) and int(cm.sum()) == len(digits.y_te)
    assert float(cm.diagonal().sum()) / len(digits.y_te) == pytest.approx(r.metrics["knn_accuracy"])
    print(r.summary_line())
    line = capsys.readouterr().out.strip()
    assert line.startswith("kNN accuracy, test: ") and "(raw pixels 0." in line and "chance" in line
    assert "linear-probe accuracy, test:" in r.format()


def test_classification_never_selects_on_test(digits):
    """k and the probe's penalty do not depend on the test labels."""
    protocol = ClassificationProtocol(weight_decays=(1e-4, 1e-1), max_iter=50)
    g = torch.Generator().manual_seed(0)
    shuffled = digits.y_te[torch.randperm(len(digits.y_te), generator=g)]
    a = protocol.evaluate(digits.z_tr, digits.y_tr, digits.z_te, digits.y_te)
    b = protocol.evaluate(digits.z_tr, digits.y_tr, digits.z_te, shuffled)
    for key in ("k", "val_knn_accuracy_by_k", "probe_weight_decay", "probe_val_accuracy"):
        assert a.details[key] == b.details[key]
    assert b.metrics["knn_accuracy"] < 0.3  # shuffled labels: near chance on test only


def test_classification_explicit_val_split(digits):
    n = 900
    r = ClassificationProtocol(probe=False, ks=(1, 5, 10)).evaluate(
        digits.z_tr[:n],
        digits.y_tr[:n],
        digits.z_te,
        digits.y_te,
        val_features=digits.z_tr[n:],
        val_labels=digits.y_tr[n:],
        baseline_train=digits.pix_tr[:n],
        baseline_test=digits.pix_te,
        baseline_val=digits.pix_tr[n:],
        baseline_name="raw pixels",
    )
    assert r.details["n_train"] == n and r.details["n_val"] == len(digits.y_tr) - n
    assert r.details["val_source"] == "val split"
    assert "linear_probe_accuracy" not in r.metrics
    with pytest.raises(ValueError, match="for every split"):
        ClassificationProtocol(probe=False).evaluate(
            digits.z_tr, digits.y_tr, digits.z_te, digits.y_te, baseline_train=digits.pix_tr
        )


def test_classification_perfect_and_random(digits):
    protocol = ClassificationProtocol(probe=False, ks=(1, 5, 20))
    perfect = protocol.evaluate(
        _one_hot(digits.y_tr, 0.05), digits.y_tr, _one_hot(digits.y_te, 0.05, 1), digits.y_te
    )
    assert perfect.baseline_name == "chance"
    for key in ("knn_accuracy", "knn_macro_f1", "map_at_r"):
        assert perfect.metrics[key] == pytest.approx(1.0)
    accs = []
    for seed in range(3):
        r = protocol.evaluate(
            _random(len(digits.y_tr), seed),
            digits.y_tr,
            _random(len(digits.y_te), seed + 100),
            digits.y_te,
        )
        accs.append(r.metrics["knn_accuracy"])
    assert abs(sum(accs) / len(accs) - 0.1) < 0.04, accs


# ----------------------------------------------------------------------------- retrieval


def _loop_retrieval(a: torch.Tensor, b: torch.Tensor, ks) -> dict[str, float]:
    """R@k and MRR in both directions by explicit loops over float64 cosines."""
    an = torch.nn.functional.normalize(a.double(), dim=1)
    bn = torch.nn.functional.normalize(b.double(), dim=1)
    out = {}
    for side, (q, c) in (("a2b", (an, bn)), ("b2a", (bn, an))):
        ranks = []
        for i in range(q.shape[0]):
            sims = [float(q[i] @ c[j]) for j in range(c.shape[0])]
            ranks.append(1 + sum(1 for s in sims if s > sims[i]))
        for k in ks:
            out[f"{side}_recall@{k}"] = sum(r <= k for r in ranks) / len(ranks)
        out[f"{side}_mrr"] = sum(1.0 / r for r in ranks) / len(ranks)
    return out


def test_retrieval_digits_shifted_views(digits, capsys):
    """Pairs: a test digit ↔ the same digit shifted one pixel right (two views of a row)."""
    shifted = torch.roll(digits.data.test.images, shifts=1, dims=3).flatten(1).float() / 255.0
    r = RetrievalProtocol().evaluate(
        digits.z_te,
        digits.project(shifted),
        baseline_a=digits.pix_te,
        baseline_b=shifted,
        baseline_name="raw pixels",
        a_name="digit",
        b_name="shifted digit",
    )
    _check_result(r, "retrieval", "raw pixels")
    n = len(digits.y_te)
    assert list(r.metrics)[0] == "mean_recall@1"
    chance = r.other_baselines["chance"]
    for figures in (r.metrics, r.baseline):
        assert all(0.0 <= v <= 1.0 for k, v in figures.items() if "median" not in k)
        assert 1 <= figures["a2b_median_rank"] <= n
        assert figures["a2b_recall@1"] <= figures["a2b_recall@5"] <= figures["a2b_recall@10"]
        # a one-pixel shift of an 8×8 digit is a hard view: well above chance, far from 1
        for key in ("a2b_recall@10", "b2a_recall@10", "mean_mrr"):
            assert figures[key] > 2 * chance[key]
    assert chance["a2b_recall@5"] == pytest.approx(5 / n)
    assert chance["b2a_mrr"] == pytest.approx(sum(1 / i for i in range(1, n + 1)) / n)
    assert chance["a2b_median_rank"] == math.ceil(n / 2)
    print(r.summary_line())
    line = capsys.readouterr().out.strip()
    assert line.startswith("digit↔shifted digit mean R@1, test: ") and "(raw pixels 0." in line
    assert "digit→shifted digit R@10" in r.format() and "shifted digit→digit MRR" in r.format()


def test_retrieval_against_loop_both_directions(digits):
    n = 120
    a = digits.z_te[:n]
    b = digits.project(torch.roll(digits.data.test.images[:n], 1, dims=2).flatten(1) / 255.0)
    r = RetrievalProtocol(ks=(1, 3, 10)).evaluate(a, b)
    expected = _loop_retrieval(a, b, (1, 3, 10))
    for key, value in expected.items():
        assert r.metrics[key] == pytest.approx(value, abs=1e-9), key
    assert r.metrics["mean_mrr"] == pytest.approx(0.5 * (expected["a2b_mrr"] + expected["b2a_mrr"]))


def test_retrieval_perfect_and_random():
    n = 300
    perfect = RetrievalProtocol().evaluate(torch.eye(n), torch.eye(n) + 0.01)
    assert all(v == pytest.approx(1.0) for v in perfect.metrics.values())  # median rank 1 too
    got = [
        RetrievalProtocol().evaluate(_random(n, s), _random(n, s + 50)).metrics for s in range(4)
    ]
    for key, chance in perfect.baseline.items():
        mean = sum(m[key] for m in got) / len(got)
        if "median_rank" in key:  # a rank among 300: within 5% of it
            assert abs(mean - chance) < 0.05 * n, (key, mean, chance)
        else:
            assert abs(mean - chance) < 0.02, (key, mean, chance)


# ----------------------------------------------------------------------------- similarity


def _digit_pairs(labels: torch.Tensor, n_pairs: int, seed: int = 0):
    """Random pairs of distinct test digits; score 1 for the same class, else 0."""
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(len(labels), (n_pairs,), generator=g)
    j = (i + torch.randint(1, len(labels), (n_pairs,), generator=g)) % len(labels)
    return torch.stack([i, j], 1), (labels[i] == labels[j]).double()


def test_similarity_digits_pairs_and_matrix(digits, capsys):
    from scipy.stats import pearsonr, spearmanr

    pairs, scores = _digit_pairs(digits.y_te, 3000)
    r = SimilarityProtocol().evaluate(
        digits.z_te,
        scores,
        pairs=pairs,
        baseline_features=digits.pix_te,
        baseline_name="raw pixels",
    )
    _check_result(r, "similarity", "raw pixels")
    assert 0.3 < r.metrics["spearman"] <= 1.0 and 0.3 < r.baseline["pearson"] <= 1.0
    assert r.other_baselines["chance"] == {"spearman": 0.0, "pearson": 0.0}
    zn = torch.nn.functional.normalize(digits.z_te.double(), dim=1)
    cos = (zn[pairs[:, 0]] * zn[pairs[:, 1]]).sum(1).numpy()
    assert r.metrics["spearman"] == pytest.approx(spearmanr(cos, scores.numpy())[0], abs=1e-9)
    assert r.metrics["pearson"] == pytest.approx(pearsonr(cos, scores.numpy())[0], abs=1e-9)
    # the matrix form (every pair of 60 rows) equals the pair form over the upper triangle
    y = digits.y_te[:60]
    human = (y[:, None] == y[None, :]).double()
    iu = torch.triu_indices(60, 60, offset=1).T
    m = SimilarityProtocol().evaluate(digits.z_te[:60], human)
    p = SimilarityProtocol().evaluate(digits.z_te[:60], human[iu[:, 0], iu[:, 1]], pairs=iu)
    assert m.metrics == pytest.approx(p.metrics) and m.details["pairs"] == 60 * 59 // 2
    print(r.summary_line())
    line = capsys.readouterr().out.strip()
    assert line.startswith("Spearman correlation, test: ") and "(raw pixels 0." in line


def test_similarity_perfect_and_random(digits):
    pairs, _ = _digit_pairs(digits.y_te, 2000, seed=1)
    zn = torch.nn.functional.normalize(digits.z_te.double(), dim=1)
    human = 3.0 * (zn[pairs[:, 0]] * zn[pairs[:, 1]]).sum(1) + 1.0  # an increasing map of cosine
    perfect = SimilarityProtocol().evaluate(digits.z_te, human, pairs=pairs)
    assert perfect.metrics == pytest.approx({"spearman": 1.0, "pearson": 1.0})
    for seed in range(3):
        r = SimilarityProtocol().evaluate(_random(len(digits.y_te), seed), human, pairs=pairs)
        assert abs(r.metrics["spearman"]) < 0.1 and abs(r.metrics["pearson"]) < 0.1


# ----------------------------------------------------------------------------- ranking


@pytest.fixture(scope="module")
def interactions(digits):
    """Users = 300 training digits, items = 100 test digits; each user interacts with 6 random
    items of its class: 3 training and 3 test interactions."""
    n_users, n_items = 300, 100
    g = torch.Generator().manual_seed(0)
    item_y = digits.y_te[:n_items]
    train, test = [], []
    for u in range(n_users):
        same = torch.nonzero(item_y == digits.y_tr[u]).flatten()
        picked = same[torch.randperm(same.numel(), generator=g)[:6]].tolist()
        train += [(u, i) for i in picked[:3]]
        test += [(u, i) for i in picked[3:]]
    return SimpleNamespace(
        n_users=n_users,
        n_items=n_items,
        train=torch.tensor(train),
        test=torch.tensor(test),
    )


def _loop_ranking(scores: torch.Tensor, train, test, ks) -> dict[str, float]:
    """Recall@K and NDCG@K by explicit loops, seen items removed from each user's ranking."""
    seen, held = {}, {}
    for u, i in train.tolist():
        seen.setdefault(u, set()).add(i)
    for u, i in test.tolist():
        held.setdefault(u, set()).add(i)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    users = 0
    for u, relevant in held.items():
        relevant = relevant - seen.get(u, set())
        if not relevant:
            continue
        users += 1
        candidates = [i for i in range(scores.shape[1]) if i not in seen.get(u, set())]
        ranked = sorted(candidates, key=lambda i: -float(scores[u, i]))
        for k in ks:
            top = ranked[:k]
            sums[f"recall@{k}"] += sum(i in relevant for i in top) / len(relevant)
            dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(top) if i in relevant)
            idcg = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(relevant))))
            sums[f"ndcg@{k}"] += dcg / idcg
    return {key: v / users for key, v in sums.items()}


def test_ranking_digits_against_loop(digits, interactions, capsys):
    users, items = digits.z_tr[: interactions.n_users], digits.z_te[: interactions.n_items]
    ks = (5, 10)
    r = RankingProtocol(ks=ks).evaluate(
        users,
        items,
        interactions.train,
        interactions.test,
        baseline_users=digits.pix_tr[: interactions.n_users],
        baseline_items=digits.pix_te[: interactions.n_items],
        baseline_name="raw pixels",
    )
    _check_result(r, "ranking", "raw pixels")
    assert list(r.metrics)[0] == "recall@5"
    assert set(r.other_baselines) == {"popularity", "chance"}
    cos = (
        torch.nn.functional.normalize(users.double(), dim=1)
        @ torch.nn.functional.normalize(items.double(), dim=1).T
    )
    expected = _loop_ranking(cos, interactions.train, interactions.test, ks)
    assert r.metrics == pytest.approx(expected, abs=1e-9)
    # popularity: training interaction counts, ties broken by the lower item index
    counts = torch.bincount(interactions.train[:, 1], minlength=interactions.n_items).double()
    pop_scores = (counts - torch.arange(interactions.n_items) * 1e-6).expand(
        interactions.n_users, -1
    )
    pop = _loop_ranking(pop_scores, interactions.train, interactions.test, ks)
    assert r.other_baselines["popularity"] == pytest.approx(pop, abs=1e-9)
    for figures in (r.metrics, r.baseline, *r.other_baselines.values()):
        assert all(0.0 <= v <= 1.0 for v in figures.values())
    assert r.metrics["recall@10"] > 2 * r.other_baselines["chance"]["recall@10"]
    assert r.details["users"] == interactions.n_users
    assert r.details["test_interactions_seen_in_train"] == 0
    print(r.summary_line())
    line = capsys.readouterr().out.strip()
    assert line.startswith("Recall@5, test: ") and "raw pixels 0." in line
    assert "popularity 0." in line and "chance 0." in line


def test_ranking_excludes_seen_items(interactions):
    """A user's training items never count, even when its embedding prefers them."""
    n_users, n_items = interactions.n_users, interactions.n_items
    seen = torch.zeros(n_users, n_items)
    seen[interactions.train[:, 0], interactions.train[:, 1]] = 1.0
    # users point at their seen items only: after exclusion every remaining item ties at 0
    r = RankingProtocol(ks=(10,)).evaluate(
        seen, torch.eye(n_items), interactions.train, interactions.test
    )
    assert r.metrics["recall@10"] < 0.5
    # a test pair that is also a training pair is dropped from the test items and counted
    test = torch.cat([interactions.test, interactions.train[:5]])
    dense_train = seen > 0  # the dense (U, I) form of the same interactions
    r2 = RankingProtocol(ks=(10,)).evaluate(seen, torch.eye(n_items), dense_train, test)
    assert r2.details["test_interactions_seen_in_train"] == 5
    assert r2.metrics == pytest.approx(r.metrics)


def test_ranking_perfect_and_random(interactions):
    n_users, n_items = interactions.n_users, interactions.n_items
    held = torch.zeros(n_users, n_items)
    held[interactions.test[:, 0], interactions.test[:, 1]] = 1.0
    perfect = RankingProtocol(ks=(3, 10)).evaluate(
        held, torch.eye(n_items), interactions.train, interactions.test
    )
    assert all(v == pytest.approx(1.0) for v in perfect.metrics.values())  # median rank 1 too
    assert perfect.baseline_name == "popularity"
    chance = perfect.other_baselines["chance"]
    # 97 candidates per user, 3 relevant: E[recall@10] = 10/97
    assert chance["recall@10"] == pytest.approx(10 / 97)
    got = [
        RankingProtocol(ks=(3, 10))
        .evaluate(
            _random(n_users, s), _random(n_items, s + 9), interactions.train, interactions.test
        )
        .metrics
        for s in range(4)
    ]
    for key, value in chance.items():
        mean = sum(m[key] for m in got) / len(got)
        assert abs(mean - value) < 0.03, (key, mean, value)


# ----------------------------------------------------------------------------- anomaly


def _loop_auroc(scores: list[float], anomaly: list[bool]) -> float:
    """P(score of a random anomaly > score of a random normal row), ties counting half."""
    pos = [s for s, a in zip(scores, anomaly) if a]
    neg = [s for s, a in zip(scores, anomaly) if not a]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def test_anomaly_digits_against_loop(digits, capsys):
    """Normal class: 8 (the hardest digit to tell apart here; 0 scores AUROC 1.000)."""
    r = AnomalyProtocol(normal_classes=(8,)).evaluate(
        digits.z_tr,
        digits.y_tr,
        digits.z_te,
        digits.y_te,
        baseline_train=digits.pix_tr,
        baseline_test=digits.pix_te,
        baseline_name="raw pixels",
    )
    _check_result(r, "anomaly", "raw pixels")
    assert list(r.metrics) == ["auroc", "aupr"]
    frac = float((digits.y_te != 8).float().mean())
    assert r.other_baselines["chance"] == pytest.approx({"auroc": 0.5, "aupr": frac})
    for figures in (r.metrics, r.baseline):
        assert 0.9 < figures["auroc"] <= 1.0 and frac < figures["aupr"] <= 1.0
    assert r.details["n_normal_train"] == int((digits.y_tr == 8).sum())
    # explicit loop: score = 1 − max cosine to the normal training rows, AUROC by pair counting
    normal = torch.nn.functional.normalize(digits.z_tr[digits.y_tr == 8].double(), dim=1)
    q = torch.nn.functional.normalize(digits.z_te.double(), dim=1)
    scores = [
        1.0 - max(float(q[i] @ normal[j]) for j in range(normal.shape[0])) for i in range(len(q))
    ]
    expected = _loop_auroc(scores, (digits.y_te != 8).tolist())
    assert r.metrics["auroc"] == pytest.approx(expected, abs=1e-4)
    print(r.summary_line())
    line = capsys.readouterr().out.strip()
    assert line.startswith("anomaly AUROC, test: ") and "(raw pixels 0." in line


def test_anomaly_uses_only_normal_training_rows(digits):
    """The anomalous training rows are ignored; several normal classes are allowed."""
    protocol = AnomalyProtocol(normal_classes=(1, 7), k=5)
    full = protocol.evaluate(digits.z_tr, digits.y_tr, digits.z_te, digits.y_te)
    keep = (digits.y_tr == 1) | (digits.y_tr == 7)
    only = protocol.evaluate(digits.z_tr[keep], digits.y_tr[keep], digits.z_te, digits.y_te)
    assert full.metrics == only.metrics and full.details["k"] == 5
    flags = AnomalyProtocol(normal_classes=None).evaluate(
        digits.z_tr, (digits.y_tr != 0).long(), digits.z_te, (digits.y_te != 0).long()
    )
    zero = AnomalyProtocol(normal_classes=(0,)).evaluate(
        digits.z_tr, digits.y_tr, digits.z_te, digits.y_te
    )
    assert flags.metrics == pytest.approx(zero.metrics)
    with pytest.raises(ValueError, match="both"):
        protocol.evaluate(digits.z_tr, digits.y_tr, digits.z_te[:5], torch.ones(5).long())


def test_anomaly_perfect_and_random(digits):
    protocol = AnomalyProtocol(normal_classes=(3,))
    perfect = protocol.evaluate(
        _one_hot(digits.y_tr, 0.05), digits.y_tr, _one_hot(digits.y_te, 0.05, 1), digits.y_te
    )
    assert perfect.metrics == pytest.approx({"auroc": 1.0, "aupr": 1.0})
    aurocs = [
        protocol.evaluate(
            _random(len(digits.y_tr), s), digits.y_tr, _random(len(digits.y_te), s + 7), digits.y_te
        ).metrics["auroc"]
        for s in range(4)
    ]
    assert abs(sum(aurocs) / len(aurocs) - 0.5) < 0.06, aurocs


# ----------------------------------------------------------------------------- few-shot


def _loop_prototype_accuracy(x: torch.Tensor, episode) -> float:
    """Nearest centroid by explicit loops: prototypes = mean of normalised support rows."""
    z = torch.nn.functional.normalize(x.double(), dim=1)
    n_way = int(episode.classes.numel())
    protos = []
    for c in range(n_way):
        rows = [int(r) for r, lab in zip(episode.support, episode.support_labels) if int(lab) == c]
        protos.append(sum(z[r] for r in rows) / len(rows))
    correct = 0
    for r, lab in zip(episode.query.tolist(), episode.query_labels.tolist()):
        sims = [float(z[r] @ p) / float(p.norm()) for p in protos]
        correct += max(range(n_way), key=lambda c: sims[c]) == lab
    return correct / episode.query.numel()


def test_few_shot_digits(digits, capsys):
    protocol = FewShotProtocol(n_way=5, shots=(1, 5), queries=15, episodes=200, seed=0)
    r = protocol.evaluate(
        digits.z_te, digits.y_te, baseline_features=digits.pix_te, baseline_name="raw pixels"
    )
    _check_result(r, "few_shot", "raw pixels")
    assert list(r.metrics)[0] == "5way_1shot_accuracy"
    for figures in (r.metrics, r.baseline):
        assert 0.6 < figures["5way_1shot_accuracy"] < figures["5way_5shot_accuracy"] <= 1.0
        assert 0.0 < figures["5way_1shot_ci95"] < 0.05
    assert r.other_baselines["chance"]["5way_5shot_accuracy"] == pytest.approx(0.2)
    print(r.format())
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2  # the CI is folded into its accuracy's line
    assert out[0].startswith("5-way 1-shot accuracy, test: 0.") and " ± " in out[0]
    assert "(raw pixels 0." in out[0] and "chance 0.200)" in out[0]
    assert out[1].startswith("5-way 5-shot accuracy, test: ")


def test_few_shot_episodes_against_loop(digits):
    protocol = FewShotProtocol(n_way=5, shots=(1, 5), queries=4, episodes=3, seed=11)
    by_k = protocol.episodes_for(digits.y_te)
    assert set(by_k) == {1, 5} and all(len(eps) == 3 for eps in by_k.values())
    for k, eps in by_k.items():
        for e in eps:
            assert e.classes.unique().numel() == 5
            assert e.support.numel() == 5 * k and e.query.numel() == 5 * 4
            assert not set(e.support.tolist()) & set(e.query.tolist())
            assert torch.equal(digits.y_te[e.support], e.classes[e.support_labels])
            assert torch.equal(digits.y_te[e.query], e.classes[e.query_labels])
    r = protocol.evaluate(digits.z_te, digits.y_te)
    for k, eps in by_k.items():
        accs = [_loop_prototype_accuracy(digits.z_te, e) for e in eps]
        mean = sum(accs) / 3
        std = math.sqrt(sum((a - mean) ** 2 for a in accs) / 3)
        assert r.metrics[f"5way_{k}shot_accuracy"] == pytest.approx(mean, abs=1e-9)
        assert r.metrics[f"5way_{k}shot_ci95"] == pytest.approx(1.96 * std / math.sqrt(3))
    # the same seed draws the same episodes; another seed others
    again = FewShotProtocol(n_way=5, shots=(1, 5), queries=4, episodes=3, seed=11)
    assert torch.equal(again.episodes_for(digits.y_te)[5][2].query, by_k[5][2].query)
    other = FewShotProtocol(n_way=5, shots=(1, 5), queries=4, episodes=3, seed=12)
    assert not torch.equal(other.episodes_for(digits.y_te)[5][2].query, by_k[5][2].query)


def test_few_shot_perfect_and_random(digits):
    protocol = FewShotProtocol(n_way=5, shots=(1,), queries=10, episodes=100)
    perfect = protocol.evaluate(_one_hot(digits.y_te, 0.05), digits.y_te)
    assert perfect.metrics["5way_1shot_accuracy"] == pytest.approx(1.0)
    assert perfect.summary_line() == "5-way 1-shot accuracy, test: 1.000 (chance 0.200)"
    accs = [
        FewShotProtocol(n_way=5, shots=(1,), queries=10, episodes=100, seed=s)
        .evaluate(_random(len(digits.y_te), s), digits.y_te)
        .metrics["5way_1shot_accuracy"]
        for s in range(3)
    ]
    assert abs(sum(accs) / len(accs) - 0.2) < 0.03, accs
    with pytest.raises(ValueError, match="need 11 classes"):
        FewShotProtocol(n_way=11).evaluate(digits.z_te, digits.y_te)


def _first_hit_loop(q, c, ids):
    """Rank of the best key sharing the query's id, by an explicit loop (ties: lower index)."""
    qn, cn = F.normalize(q.double(), dim=1), F.normalize(c.double(), dim=1)
    ranks = []
    for i in range(len(qn)):
        sims = [float(qn[i] @ cn[j]) for j in range(len(cn))]
        order = sorted(range(len(cn)), key=lambda j: (-sims[j], j))
        ranks.append(1 + next(r for r, j in enumerate(order) if ids[j] == ids[i]))
    return torch.tensor(ranks, dtype=torch.float64)


def test_retrieval_with_shared_captions_counts_any_of_them_as_a_hit():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(30, 6, generator=g), torch.randn(30, 6, generator=g)
    ids = torch.tensor([i // 3 for i in range(30)])  # ten captions, three images each
    for q, c in ((a, b), (b, a)):
        torch.testing.assert_close(first_hit_ranks(q, c, ids, ids), _first_hit_loop(q, c, ids))
    torch.testing.assert_close(first_hit_ranks(a, b), partner_ranks(a, b))
    r = RetrievalProtocol(ks=(1, 5)).evaluate(a, b, ids=ids)
    ranks = _first_hit_loop(a, b, ids)
    assert r.metrics["a2b_recall@5"] == pytest.approx(float((ranks <= 5).double().mean()))
    assert r.metrics["a2b_median_rank"] == float(ranks.median())
    # chance with groups of 3 among 30: P(first hit ≤ k) = 1 − C(27, k) / C(30, k)
    assert r.baseline["a2b_recall@1"] == pytest.approx(3 / 30)
    assert r.baseline["a2b_recall@5"] == pytest.approx(1 - math.comb(27, 5) / math.comb(30, 5))
    exact_mrr = sum(math.comb(30 - k, 2) / math.comb(30, 3) / k for k in range(1, 29))
    assert r.baseline["a2b_mrr"] == pytest.approx(exact_mrr)
    assert r.details["groups"] == 10
    assert "digit" not in r.format() and "a→b median rank" in r.format()
    with pytest.raises(ValueError, match="no key with its id"):
        first_hit_ranks(a, b, torch.zeros(30, dtype=torch.long), torch.ones(30, dtype=torch.long))
