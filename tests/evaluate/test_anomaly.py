"""Anomaly scores, thresholds and metrics (contrastkit.evaluate.anomaly).

Every score is checked against an explicit Python loop on small random data (float64), plus
analytic cases: a query equal to a bank row has kNN distance 0; Mahalanobis without shrinkage
on a diagonal Gaussian is (x − μ)ᵀ Σ⁻¹ (x − μ); CSI's leave-one-out weights by hand. Thresholds
keep the false-positive rate at or under the target on the held-out normal scores and close to
it on fresh rows; separable data have AUROC 1; the raw baselines rank outliers above inliers;
a fitted scorer survives a safetensors + JSON round trip.
"""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
import torch

import contrastkit.evaluate.anomaly as anomaly_module
from contrastkit.evaluate.anomaly import (
    AnomalyScorer,
    MahalanobisScorer,
    auroc,
    csi_ensemble_scores,
    csi_scores,
    csi_weights,
    false_positive_rate,
    flag,
    knn_distance_scores,
    ledoit_wolf_shrinkage,
    mahalanobis_scores,
    ocsvm_scores,
    pca_reconstruction_scores,
    roc_points,
    threshold_at_fpr,
)
from contrastkit.evaluate.protocols.anomaly import knn_anomaly_scores


def _randn(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _norm(v) -> float:
    return math.sqrt(sum(float(a) ** 2 for a in v))


def _cos(a, b) -> float:
    return sum(float(x) * float(y) for x, y in zip(a, b)) / (_norm(a) * _norm(b))


def _loop_s_con(bank, z, skip: int | None = None) -> float:
    return max(_cos(bm, z) for m, bm in enumerate(bank) if m != skip) * _norm(z)


def test_doctests():
    result = doctest.testmod(
        anomaly_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0 and result.attempted > 20


# ----------------------------------------------------------------------------- CSI


def test_csi_scores_against_loop():
    bank, query = _randn(20, 5, seed=1) + 0.5, _randn(7, 5, seed=2)
    got = csi_scores(bank, query, chunk_size=3)
    assert got.dtype == torch.float32 and got.shape == (7,) and got.device.type == "cpu"
    want = torch.tensor([-_loop_s_con(bank, z) for z in query], dtype=torch.float64)
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-6)
    # a query that is a bank row scores minus its norm; scaling a query scales its score
    assert float(csi_scores(bank, bank[3:4])[0]) == pytest.approx(-float(bank[3].norm()), 1e-6)
    torch.testing.assert_close(csi_scores(bank, 2 * query), 2 * got)


def test_csi_weights_by_hand():
    # K = 2 shifts, M = 3 rows, D = 2
    bank = torch.tensor(
        [
            [[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]],
            [[2.0, 0.0], [0.0, 1.0], [3.0, 4.0]],
        ],
        dtype=torch.float64,
    )
    r = 1 / math.sqrt(2)
    # shift 0: row 0's best other is (1,1): cos r, norm 1; row 1's: max(r, r)·√2 = 1; row 2's:
    # (1,1): cos r, norm 2
    s0 = [r * 1, r * math.sqrt(2), r * 2]
    # shift 1: row 0 vs (0,1) cos 0, vs (3,4) cos 0.6 → 0.6·2; row 1 vs (3,4) cos 0.8 → 0.8·1;
    # row 2 vs (2,0) cos 0.6, vs (0,1) cos 0.8 → 0.8·5
    s1 = [0.6 * 2, 0.8 * 1, 0.8 * 5]
    logits = torch.tensor(
        [
            [[2.0, 0.0], [1.0, 5.0], [3.0, 0.0]],  # shift 0: true logits 2, 1, 3
            [[0.0, 1.0], [9.0, 2.0], [0.0, 0.5]],  # shift 1: true logits 1, 2, 0.5
        ],
        dtype=torch.float64,
    )
    lam, mu = csi_weights(bank, logits)
    torch.testing.assert_close(lam, torch.tensor([3 / sum(s0), 3 / sum(s1)], dtype=torch.float64))
    torch.testing.assert_close(mu, torch.tensor([3 / 6, 3 / 3.5], dtype=torch.float64))
    # not leave-one-out the bank's s_con would be its norms; the weights differ from those
    assert float(lam[0]) != pytest.approx(3 / (1 + math.sqrt(2) + 2))
    assert csi_weights(bank)[1] is None


def test_csi_ensemble_against_loop():
    k_n, m, q, d = 4, 15, 6, 5
    bank = _randn(k_n, m, d, seed=3) + 1.0
    query = _randn(k_n, q, d, seed=4) + 0.5
    bank_logits = _randn(k_n, m, k_n, seed=5) + 3 * torch.eye(k_n, dtype=torch.float64)[:, None]
    query_logits = _randn(k_n, q, k_n, seed=6)
    lam = [m / sum(_loop_s_con(bank[k], bank[k][i], skip=i) for i in range(m)) for k in range(k_n)]
    mu = [m / sum(float(bank_logits[k, i, k]) for i in range(m)) for k in range(k_n)]
    want_con, want_all = [], []
    for j in range(q):
        con = sum(lam[k] * _loop_s_con(bank[k], query[k][j]) for k in range(k_n))
        cls = sum(mu[k] * float(query_logits[k, j, k]) for k in range(k_n))
        want_con.append(-con)
        want_all.append(-(con + cls))
    got_con = csi_ensemble_scores(bank, query, chunk_size=4)
    got_all = csi_ensemble_scores(bank, query, bank_logits, query_logits)
    torch.testing.assert_close(
        got_con.double(), torch.tensor(want_con, dtype=torch.float64), atol=1e-5, rtol=1e-6
    )
    torch.testing.assert_close(
        got_all.double(), torch.tensor(want_all, dtype=torch.float64), atol=1e-5, rtol=1e-6
    )
    # one shift, no logits: a positive multiple of csi_scores (same ranking)
    one = csi_ensemble_scores(bank[:1], query[:1])
    torch.testing.assert_close(
        one, float(csi_weights(bank[:1])[0][0]) * csi_scores(bank[0], query[0])
    )


def test_csi_errors_name_the_fix():
    bank = _randn(2, 5, 3, seed=0)
    with pytest.raises(ValueError, match="both bank_logits and query_logits"):
        csi_ensemble_scores(bank, bank, bank_logits=torch.ones(2, 5, 2))
    with pytest.raises(ValueError, match=r"\(K, rows, D\)"):
        csi_ensemble_scores(bank[0], bank)
    with pytest.raises(ValueError, match=r"must be \(2, 5, 2\)"):
        csi_weights(bank, torch.ones(2, 5, 3))
    with pytest.raises(ValueError, match="not positive"):
        csi_weights(bank.abs() + 1, -torch.ones(2, 5, 2))
    with pytest.raises(ValueError, match="at least 2"):
        csi_weights(bank[:, :1])
    with pytest.raises(ValueError, match="D=3 features per row but query has D=4"):
        csi_scores(bank[0], torch.ones(2, 4))


# ----------------------------------------------------------------------------- kNN


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("k", [1, 3])
def test_knn_distance_against_loop(k, normalize):
    bank, query = _randn(25, 4, seed=7), _randn(9, 4, seed=8)
    got = knn_distance_scores(bank, query, k=k, normalize=normalize, chunk_size=4)
    b = torch.nn.functional.normalize(bank, dim=1) if normalize else bank
    qq = torch.nn.functional.normalize(query, dim=1) if normalize else query
    want = []
    for z in qq:
        dists = sorted(_norm([float(x) - float(y) for x, y in zip(z, row)]) for row in b)
        want.append(sum(dists[:k]) / k)
    assert got.dtype == torch.float32 and got.shape == (9,)
    torch.testing.assert_close(
        got.double(), torch.tensor(want, dtype=torch.float64), atol=1e-6, rtol=1e-6
    )


def test_knn_distance_analytic_and_agrees_with_protocol():
    bank = _randn(30, 6, seed=9, dtype=torch.float32)
    for normalize in (True, False):
        s = knn_distance_scores(bank, bank[[0, 7, 29]], normalize=normalize)
        assert torch.equal(s, torch.zeros(3))
    # unit sphere, k = 1: √(2·(1 − max cos)) = √(2·knn_anomaly_scores)
    query = _randn(12, 6, seed=10, dtype=torch.float32)
    torch.testing.assert_close(
        knn_distance_scores(bank, query),
        (2 * knn_anomaly_scores(bank, query)).sqrt(),
        atol=1e-5,
        rtol=1e-5,
    )
    # k is capped at the bank size
    torch.testing.assert_close(
        knn_distance_scores(bank[:2], query, k=10), knn_distance_scores(bank[:2], query, k=2)
    )


# ----------------------------------------------------------------------------- Mahalanobis


def test_mahalanobis_diagonal_gaussian_matches_formula():
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    sd = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    bank = mu + sd * _randn(20_000, 3, seed=11)
    query = mu + sd * 3 * _randn(10, 3, seed=12)
    want = (((query - mu) / sd) ** 2).sum(1)
    for shrinkage in (0.0, 1e-6):
        got = mahalanobis_scores(bank, query, normalize=False, shrinkage=shrinkage)
        torch.testing.assert_close(got.double(), want, rtol=0.05, atol=0.05)
    # Ledoit–Wolf on this well-conditioned, large sample shrinks little
    scorer = MahalanobisScorer(normalize=False).fit(bank)
    assert scorer.shrinkage_ < 0.01
    torch.testing.assert_close(scorer.score(query).double(), want, rtol=0.05, atol=0.05)


def test_mahalanobis_against_loop_and_sklearn():
    from sklearn.covariance import LedoitWolf

    bank, query = _randn(12, 5, seed=13), _randn(6, 5, seed=14)
    for normalize in (False, True):
        x = torch.nn.functional.normalize(bank, dim=1) if normalize else bank
        qx = torch.nn.functional.normalize(query, dim=1) if normalize else query
        lw = LedoitWolf().fit(x.numpy())
        scorer = MahalanobisScorer(normalize=normalize).fit(bank)
        assert scorer.shrinkage_ == pytest.approx(lw.shrinkage_, abs=1e-10)
        assert ledoit_wolf_shrinkage(x) == pytest.approx(lw.shrinkage_, abs=1e-10)
        np.testing.assert_allclose(scorer.precision_.numpy(), lw.precision_, rtol=1e-7, atol=1e-7)
        prec = lw.precision_
        want = []
        for z in qx.numpy():
            dz = z - lw.location_
            want.append(sum(dz[i] * prec[i, j] * dz[j] for i in range(5) for j in range(5)))
        np.testing.assert_allclose(scorer.score(query).numpy(), want, rtol=1e-5)
        np.testing.assert_allclose(lw.mahalanobis(qx.numpy()), want, rtol=1e-9)


def test_mahalanobis_errors():
    with pytest.raises(ValueError, match=r"singular.*shrinkage='ledoit_wolf'"):
        MahalanobisScorer(normalize=False, shrinkage=0.0).fit(_randn(3, 5))
    with pytest.raises(ValueError, match="shrinkage must be"):
        MahalanobisScorer(shrinkage="oas")
    with pytest.raises(RuntimeError, match="fit"):
        MahalanobisScorer().score(_randn(2, 3))


# ----------------------------------------------------------------------------- raw baselines


def _inliers_and_outliers(seed: int):
    train = _randn(300, 10, seed=seed, dtype=torch.float32)
    train[:, 5:] *= 0.05  # the normal rows live near a 5-D subspace
    inl = _randn(20, 10, seed=seed + 1, dtype=torch.float32)
    inl[:, 5:] *= 0.05
    out = _randn(20, 10, seed=seed + 2, dtype=torch.float32) * 4
    return train, torch.cat([inl, out]), torch.tensor([0] * 20 + [1] * 20)


def test_pca_and_ocsvm_rank_outliers_above_inliers():
    train, query, y = _inliers_and_outliers(20)
    for n_components in (0.9, 5):
        s = pca_reconstruction_scores(train, query, n_components=n_components)
        assert s.dtype == torch.float32 and s.shape == (40,) and bool((s >= 0).all())
        assert auroc(s, y) > 0.95
    s = ocsvm_scores(train, query, max_train=200, seed=1)
    assert s.dtype == torch.float32 and auroc(s, y) > 0.95
    # the subsample is seeded; images are flattened
    torch.testing.assert_close(s, ocsvm_scores(train, query, max_train=200, seed=1))
    assert not torch.equal(s, ocsvm_scores(train, query, max_train=200, seed=2))
    imgs = pca_reconstruction_scores(train.reshape(300, 1, 2, 5), query.reshape(40, 1, 2, 5), 5)
    torch.testing.assert_close(imgs, pca_reconstruction_scores(train, query, 5))


def test_pca_reconstruction_against_formula():
    train, query = _randn(50, 4, seed=21), _randn(5, 4, seed=22)
    mean = train.mean(0)
    _, _, vh = torch.linalg.svd(train - mean, full_matrices=False)
    v = vh[:2].T
    resid = (query - mean) - (query - mean) @ v @ v.T
    want = (resid**2).sum(1)
    torch.testing.assert_close(
        pca_reconstruction_scores(train, query, 2).double(), want, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        pca_reconstruction_scores(train, query, 1.5)
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        pca_reconstruction_scores(train, query, 9)


# ----------------------------------------------------------------------------- thresholds


def test_threshold_at_fpr_exact_on_held_out_and_close_on_fresh():
    g = torch.Generator().manual_seed(30)
    held_out = torch.randn(2000, generator=g)
    for target in (0.0, 0.01, 0.05, 0.29, 0.5):
        t = threshold_at_fpr(held_out, target)
        rate = false_positive_rate(held_out, t)
        assert rate <= target
        assert rate == pytest.approx(math.floor(target * 2000 + 1e-9) / 2000)  # as close as can be
        fresh = torch.randn(200_000, generator=g)
        assert abs(false_positive_rate(fresh, t) - target) < 0.012
        assert float(flag(fresh, t).double().mean()) == false_positive_rate(fresh, t)
    assert threshold_at_fpr(held_out, 1.0) == -math.inf
    assert threshold_at_fpr(held_out, 0.0) == float(held_out.max())


def test_threshold_with_ties_and_loop():
    scores = torch.tensor([1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0, 7.0])
    for target in [i / 20 for i in range(21)]:
        t = threshold_at_fpr(scores, target)
        # by loop: the smallest candidate threshold whose strict exceedances are ≤ target
        candidates = [-math.inf, *sorted(set(scores.tolist()))]
        best = min(
            c for c in candidates if sum(float(s) > c for s in scores) / len(scores) <= target
        )
        assert t == best, (target, t, best)
    with pytest.raises(ValueError, match=r"fpr must lie in \[0, 1\]"):
        threshold_at_fpr(scores, 5)
    with pytest.raises(ValueError, match="empty"):
        threshold_at_fpr(torch.zeros(0), 0.1)


# ----------------------------------------------------------------------------- metrics


def test_auroc_and_roc_points():
    y = torch.tensor([0, 0, 0, 1, 1])
    assert auroc(torch.tensor([0.1, 0.2, 0.3, 0.8, 0.9]), y) == 1.0
    assert auroc(torch.tensor([0.9, 0.8, 0.7, 0.1, 0.2]), y) == 0.0
    # the pairwise-comparison definition, by loop (ties count half)
    s = torch.tensor([0.3, 0.5, 0.5, 0.5, 0.1])
    pairs = [(a, b) for a in range(5) for b in range(5) if y[a] == 1 and y[b] == 0]
    want = sum(1.0 if s[a] > s[b] else 0.5 if s[a] == s[b] else 0.0 for a, b in pairs) / 6
    assert auroc(s, y.bool()) == pytest.approx(want)
    fpr, tpr = roc_points(s, y)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(want)
    with pytest.raises(ValueError, match="both normal and anomalous"):
        auroc(s, torch.zeros(5))


# ----------------------------------------------------------------------------- the scorer


@pytest.mark.parametrize(
    "method, options",
    [("knn", {"k": 2}), ("mahalanobis", {}), ("csi", {}), ("csi_shifted", {}), ("csi_logits", {})],
)
def test_anomaly_scorer_matches_functions_and_round_trips(tmp_path, method, options):
    from safetensors.torch import load_file, save_file

    bank, query = (
        _randn(40, 6, seed=40, dtype=torch.float32),
        _randn(8, 6, seed=41, dtype=torch.float32),
    )
    sb, sq = bank.reshape(4, 10, 6) + 1, query.reshape(4, 2, 6)
    bl = _randn(4, 10, 4, seed=42, dtype=torch.float32) + 3 * torch.eye(4)[:, None]
    ql = _randn(4, 2, 4, seed=43, dtype=torch.float32)
    if method == "knn":
        scorer, args = AnomalyScorer("knn", **options).fit(bank), (query,)
        want = knn_distance_scores(bank, query, k=2)
    elif method == "mahalanobis":
        scorer, args = AnomalyScorer("mahalanobis").fit(bank), (query,)
        want = mahalanobis_scores(bank, query)
    elif method == "csi":
        scorer, args = AnomalyScorer("csi").fit(bank), (query,)
        want = csi_scores(bank, query)
    elif method == "csi_shifted":
        scorer, args = AnomalyScorer("csi").fit(sb), (sq,)
        want = csi_ensemble_scores(sb, sq)
    else:
        scorer, args = AnomalyScorer("csi").fit(sb, bl), (sq, ql)
        want = csi_ensemble_scores(sb, sq, bl, ql)
    torch.testing.assert_close(scorer.score(*args), want)
    tensors, config = scorer.state()
    save_file(tensors, str(tmp_path / "scorer.safetensors"))
    (tmp_path / "scorer.json").write_text(json.dumps(config))
    again = AnomalyScorer.from_state(
        load_file(str(tmp_path / "scorer.safetensors")),
        json.loads((tmp_path / "scorer.json").read_text()),
    )
    assert again.config() == scorer.config()
    assert torch.equal(again.score(*args), scorer.score(*args))


def test_anomaly_scorer_errors():
    with pytest.raises(ValueError, match=r"valid:.*Did you mean 'knn'"):
        AnomalyScorer("kn")
    with pytest.raises(RuntimeError, match="not fitted"):
        AnomalyScorer("knn").score(torch.ones(2, 3))
    with pytest.raises(ValueError, match="bank_logits are for method 'csi'"):
        AnomalyScorer("knn").fit(torch.ones(4, 3), torch.ones(1, 4, 1))
    shifted = AnomalyScorer("csi").fit(_randn(2, 5, 3) + 2, _randn(2, 5, 2) + 5)
    with pytest.raises(ValueError, match="needs query_logits"):
        shifted.score(_randn(2, 4, 3))
    with pytest.raises(ValueError, match="lack \\['bank'\\]"):
        AnomalyScorer.from_state({}, {"method": "knn"})
    with pytest.raises(ValueError, match="not an AnomalyScorer config"):
        AnomalyScorer.from_state({}, {"method": "knn", "colour": 1})
