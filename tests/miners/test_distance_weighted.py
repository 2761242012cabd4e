"""Distance-weighted sampling: the weights against the formula, validity, seeding, statistics."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.distances import pairwise_distance
from contrastkit.losses import TripletMarginLoss
from contrastkit.losses.functional import triplet_margin
from contrastkit.miners import (
    DistanceWeightedMiner,
    Triplets,
    distance_weighted_triplets,
    distance_weights,
)


def ref_weights(dist, neg, dim, cutoff=0.5, nonzero_loss_cutoff=1.4):
    """w_ij ∝ exp(−(D−2)·log d − ((D−3)/2)·log(1 − d²/4)), d = max(d_ij, cutoff), for negatives
    with d_ij < nonzero_loss_cutoff, else 0; each row normalised to sum 1 (all-zero rows stay 0).
    """
    out = []
    for drow, nrow in zip(dist.tolist(), neg.tolist()):
        w = []
        for d_ij, is_neg in zip(drow, nrow):
            if not is_neg or d_ij >= nonzero_loss_cutoff:
                w.append(0.0)
                continue
            d = max(d_ij, cutoff)
            w.append(math.exp(-(dim - 2) * math.log(d) - ((dim - 3) / 2) * math.log(1 - d * d / 4)))
        s = sum(w)
        out.append([x / s for x in w] if s > 0 else w)
    return out


def _batch(seed=0, n=12, d=8, n_classes=4):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    ids = torch.arange(n_classes).repeat(n // n_classes)
    return z, ids


@pytest.mark.parametrize(("cutoff", "nonzero_loss_cutoff"), [(0.5, 1.4), (0.3, 1.8), (0.8, 1.2)])
@pytest.mark.parametrize("dim", [2, 3, 4, 8, 16])
def test_weights_match_formula(dim, cutoff, nonzero_loss_cutoff):
    g = torch.Generator().manual_seed(dim)
    dist = 1.95 * torch.rand(7, 9, generator=g, dtype=torch.float64)
    neg = torch.rand(7, 9, generator=g) < 0.6
    neg[3] = False  # a row without negatives
    neg[4] = False
    neg[4, 0] = True
    dist[4, 0] = nonzero_loss_cutoff + 0.01  # a row whose only negative is too far
    got = distance_weights(dist, neg, dim, cutoff, nonzero_loss_cutoff)
    want = ref_weights(dist, neg, dim, cutoff, nonzero_loss_cutoff)
    assert got.shape == (7, 9)
    for i in range(7):
        for j in range(9):
            assert abs(float(got[i, j]) - want[i][j]) < 1e-10, (i, j)
    assert torch.equal(got[3], torch.zeros(9, dtype=torch.float64))
    assert torch.equal(got[4], torch.zeros(9, dtype=torch.float64))
    sums = got.sum(dim=1)
    for i in range(7):
        if i not in (3, 4):
            assert abs(float(sums[i]) - 1.0) < 1e-12
    # the test data covers clipped, weighted and excluded negatives
    assert ((dist < cutoff) & neg).any() and ((dist >= nonzero_loss_cutoff) & neg).any()


def test_clipped_distances_share_the_cutoff_weight():
    # d = 0.2 and d = 0.4 are both clipped to 0.5 → equal weights; d ≥ 1.4 gets none.
    dist = torch.tensor([[0.2, 0.4, 0.5, 0.9, 1.4, 1.9]], dtype=torch.float64)
    neg = torch.ones_like(dist, dtype=torch.bool)
    w = distance_weights(dist, neg, 6)
    assert float(w[0, 0]) == float(w[0, 1]) == float(w[0, 2])
    assert float(w[0, 4]) == 0.0 and float(w[0, 5]) == 0.0
    # in dim 6 the density 1/q(d) falls with d on [0.5, 1.4): w(0.5) > w(0.9)
    assert float(w[0, 2]) > float(w[0, 3]) > 0


@pytest.mark.parametrize("use_key", [False, True])
def test_mined_triplets_are_valid(use_key):
    z, ids = _batch(1)
    g = torch.Generator().manual_seed(2)
    k = torch.randn(10, 8, generator=g, dtype=torch.float64)
    kids = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    key, key_ids = (k, kids) if use_key else (None, None)
    ki = ids if key is None else kids
    t = distance_weighted_triplets(z, key, query_ids=ids, key_ids=key_ids, generator=g)
    assert isinstance(t, Triplets) and t.anchor.numel() > 0
    kk = z if key is None else key
    dist = pairwise_distance(z, kk, "euclidean", normalize_embeddings=True)
    for a, p, n in zip(*(x.tolist() for x in t)):
        assert ids[a] == ki[p] and ids[a] != ki[n]
        if key is None:
            assert a != p
        assert float(dist[a, n]) < 1.4  # never a negative at d ≥ nonzero_loss_cutoff
    # one triplet per positive pair whose anchor has an eligible negative
    neg = ids[:, None] != ki[None, :]
    eligible = (neg & (dist < 1.4)).any(dim=1)
    pos_pairs = sorted(
        (a, p)
        for a in range(len(ids))
        for p in range(len(ki))
        if ids[a] == ki[p] and not (key is None and a == p) and eligible[a]
    )
    assert sorted(zip(t.anchor.tolist(), t.positive.tolist())) == pos_pairs


def test_anchor_without_eligible_negative_is_skipped():
    # anchor 0's only negative is antipodal (d = 2 ≥ 1.4): no triplet for it
    z = torch.tensor([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0]], dtype=torch.float64)
    t = distance_weighted_triplets(
        z[:1], z[1:], query_ids=torch.tensor([0]), key_ids=torch.tensor([0, 1])
    )
    assert all(x.numel() == 0 and x.dtype == torch.long for x in t)


def test_same_seed_same_triplets():
    z, ids = _batch(3)
    a = distance_weighted_triplets(z, query_ids=ids, generator=torch.Generator().manual_seed(7))
    b = distance_weighted_triplets(z, query_ids=ids, generator=torch.Generator().manual_seed(7))
    c = distance_weighted_triplets(z, query_ids=ids, generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.negative, c.negative)
    m1, m2 = DistanceWeightedMiner(seed=7), DistanceWeightedMiner(seed=7)
    r1, r2 = m1(z, query_ids=ids), m2(z, query_ids=ids)
    assert all(torch.equal(x, y) for x, y in zip(r1, r2))
    # the module draws exactly as the function with a generator of the same seed
    assert all(torch.equal(x, y) for x, y in zip(r1, a))
    # and its generator advances: the second call draws again
    assert not torch.equal(m1(z, query_ids=ids).negative, r1.negative)


def test_empirical_frequencies_match_weights():
    # One anchor e0 in D = 4; 1000 copies of a positive, so one call draws 1000 negatives
    # for the same anchor. Negatives sit at known distances d = 2·sin(θ/2) in the e0–e1 plane:
    # 0.3 (clipped to 0.5), 0.6, 0.9, 1.2, 1.35 (weighted) and 1.45, 1.9 (never drawn).
    dists = [0.3, 0.6, 0.9, 1.2, 1.35, 1.45, 1.9]
    rows = []
    for d in dists:
        theta = 2 * math.asin(d / 2)
        rows.append([math.cos(theta), math.sin(theta), 0.0, 0.0])
    negs = torch.tensor(rows, dtype=torch.float64)
    anchor = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    n_pos = 1000
    positive = torch.tensor([[0.9, 0.0, 0.3, 0.0]], dtype=torch.float64).repeat(n_pos, 1)
    key = torch.cat([positive, negs])
    key_ids = torch.cat([torch.zeros(n_pos, dtype=torch.long), torch.arange(1, 8)])
    want = ref_weights(
        torch.tensor([[0.0] * n_pos + dists], dtype=torch.float64),
        torch.tensor([[False] * n_pos + [True] * 7]),
        4,
    )[0][n_pos:]
    g = torch.Generator().manual_seed(11)
    counts = torch.zeros(7, dtype=torch.long)
    for _ in range(20):
        t = distance_weighted_triplets(
            anchor, key, query_ids=torch.tensor([0]), key_ids=key_ids, generator=g
        )
        assert t.anchor.numel() == n_pos
        counts += torch.bincount(t.negative - n_pos, minlength=7)
    freq = (counts.double() / counts.sum()).tolist()
    assert counts.sum() == 20000
    assert counts[5] == 0 and counts[6] == 0  # d ≥ nonzero_loss_cutoff: never drawn
    assert max(abs(f - w) for f, w in zip(freq, want)) < 0.01, (freq, want)
    # the weights are far from uniform, so the check has teeth
    assert max(want) - min(want[:5]) > 0.1


def test_weights_match_pml_internals(monkeypatch):
    # PML's DistanceWeightedMiner computes the same weights before sampling; capture them.
    # Differences in its code path (none matter on this data): PML subtracts one global max
    # of the log-weights instead of a per-row max (same after row normalisation), sets
    # NaN/inf log-weights to weight 0 where contrastkit clamps 1 − d²/4 at the smallest
    # positive float, and a row without an eligible negative becomes 0/0 = NaN in PML but
    # all-zero in contrastkit (such rows are left out of the comparison).
    from pytorch_metric_learning.miners import DistanceWeightedMiner as PMLMiner
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

    captured = {}
    original = lmu.get_random_triplet_indices

    def spy(labels, ref_labels=None, t_per_anchor=None, weights=None):
        captured["weights"] = weights.detach().clone()
        return original(labels, ref_labels=ref_labels, t_per_anchor=t_per_anchor, weights=weights)

    monkeypatch.setattr(lmu, "get_random_triplet_indices", spy)
    for seed, d in ((4, 8), (5, 4), (6, 16)):
        z, ids = _batch(seed, n=12, d=d)
        PMLMiner(cutoff=0.5, nonzero_loss_cutoff=1.4)(z, ids)
        pml_w = captured["weights"]
        dist = pairwise_distance(z, z, "euclidean", normalize_embeddings=True)
        neg = ids[:, None] != ids[None, :]
        ck_w = distance_weights(dist, neg, d, 0.5, 1.4)
        finite_rows = torch.isfinite(pml_w).all(dim=1)
        assert finite_rows.sum() >= 10
        torch.testing.assert_close(ck_w[finite_rows], pml_w[finite_rows], rtol=0, atol=1e-10)
        # rows PML leaves NaN have no eligible negative: all zero here
        assert torch.equal(ck_w[~finite_rows], torch.zeros_like(ck_w[~finite_rows]))


def test_no_graph_is_created():
    z, ids = _batch(7)
    z.requires_grad_(True)
    for t in (
        distance_weighted_triplets(z, query_ids=ids, generator=torch.Generator().manual_seed(0)),
        DistanceWeightedMiner(seed=0)(z, query_ids=ids),
    ):
        for x in t:
            assert x.grad_fn is None and not x.requires_grad and x.dtype == torch.long


def test_plugs_into_triplet_loss():
    z, ids = _batch(8)
    t = distance_weighted_triplets(z, query_ids=ids, generator=torch.Generator().manual_seed(5))
    loss_fn = TripletMarginLoss(0.2, miner=DistanceWeightedMiner(seed=5))
    torch.testing.assert_close(
        loss_fn(z, query_ids=ids),
        triplet_margin(z, query_ids=ids, triplets=t, margin=0.2),
        rtol=0,
        atol=0,
    )


def test_bad_inputs_raise_clearly():
    z, ids = _batch(9)
    with pytest.raises(ValueError, match="has 11 ids but query has 12 rows"):
        distance_weighted_triplets(z, query_ids=ids[:11])
    with pytest.raises(TypeError, match="must hold integer ids"):
        distance_weighted_triplets(z, query_ids=ids.float())
    with pytest.raises(ValueError, match="same embedding dimension"):
        distance_weighted_triplets(z, z[:, :4], query_ids=ids, key_ids=ids)
    bad = z.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite values"):
        DistanceWeightedMiner()(bad, query_ids=ids)
    with pytest.raises(ValueError, match="empty batch"):
        distance_weighted_triplets(z[:0], query_ids=ids[:0])
