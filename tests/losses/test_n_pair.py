"""n_pair against an explicit loop, a closed form, gradcheck and PML's NPairsLoss."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import NPairLoss, n_pair

TOL = 1e-10
REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- reference


def _dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def ref_n_pair(
    anchor, positive, anchor_ids=None, positive_ids=None, *, l2_reg=0.0, reduction="mean"
):
    """loss_i = log Σ_j exp(f_i·f_j⁺) − mean_{p: ids match} f_i·f_p⁺, plus l2_reg·(|f_i|²+|f_i⁺|²).

    With one pair per class this is the docstring's log(1 + Σ_{j≠i} exp(f_i·f_j⁺ − f_i·f_i⁺)),
    which is also evaluated and checked to agree.
    """
    A, P = anchor.tolist(), positive.tolist()
    n = len(A)
    ai = list(range(n)) if anchor_ids is None else anchor_ids.tolist()
    pi = ai if positive_ids is None else positive_ids.tolist()
    losses, regs = [], []
    for i in range(n):
        s = [_dot(A[i], P[j]) for j in range(n)]
        m = max(s)
        lse = m + math.log(sum(math.exp(x - m) for x in s))
        pos = [j for j in range(n) if pi[j] == ai[i]]
        loss_i = lse - sum(s[j] for j in pos) / len(pos)
        if pos == [i]:
            sohn = math.log1p(sum(math.exp(s[j] - s[i]) for j in range(n) if j != i))
            assert abs(sohn - loss_i) < 1e-12
        losses.append(loss_i)
        regs.append(_dot(A[i], A[i]) + _dot(P[i], P[i]))
    if reduction == "none":
        return [x + l2_reg * r for x, r in zip(losses, regs)]
    if reduction == "sum":
        return sum(losses) + l2_reg * sum(regs)
    return sum(losses) / n + l2_reg * sum(regs) / n


def assert_matches(got, want, tol=TOL):
    got = got.detach()
    if isinstance(want, list):
        assert got.shape == (len(want),)
        for g, w in zip(got.tolist(), want):
            assert abs(g - w) < tol, (g, w)
    else:
        assert got.dim() == 0
        assert abs(float(got) - want) < tol, (float(got), want)


def _data(seed=0, n=6, d=4):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    p = a + 0.8 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return a, p


IDS = {
    "default": (None, None),
    "permuted": (torch.tensor([3, 1, 5, 0, 4, 2]), torch.tensor([3, 1, 5, 0, 4, 2])),
    "cross": (torch.tensor([3, 1, 5, 0, 4, 2]), torch.tensor([0, 1, 2, 3, 4, 5])),
    "repeated_class": (torch.tensor([0, 1, 0, 2, 1, 3]), None),
}


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize("ids", list(IDS))
@pytest.mark.parametrize("l2_reg", [0.0, 0.01, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_reference(reduction, l2_reg, ids):
    a, p = _data()
    aids, pids = IDS[ids]
    got = n_pair(a, p, anchor_ids=aids, positive_ids=pids, l2_reg=l2_reg, reduction=reduction)
    assert got.dtype == torch.float64
    assert_matches(got, ref_n_pair(a, p, aids, pids, l2_reg=l2_reg, reduction=reduction))


def test_ids_change_the_result():
    # guards the reference test: the id variants are not all the same loss
    a, p = _data()
    values = {k: float(n_pair(a, p, anchor_ids=v[0], positive_ids=v[1])) for k, v in IDS.items()}
    assert values["default"] == pytest.approx(values["permuted"], abs=TOL)
    assert abs(values["default"] - values["cross"]) > 1e-3
    assert abs(values["default"] - values["repeated_class"]) > 1e-3


def test_is_info_nce_with_dot_and_unit_temperature():
    from contrastkit.losses import info_nce

    a, p = _data(1)
    ids = torch.arange(6)
    want = info_nce(a, p, query_ids=ids, key_ids=ids, similarity="dot", temperature=1.0)
    torch.testing.assert_close(n_pair(a, p), want, rtol=0, atol=TOL)


# ----------------------------------------------------------------------------- analytic cases


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("n", [2, 5])
def test_orthogonal_one_hot_closed_form(n, scale):
    # f_i = f_i⁺ = s·e_i: f_i·f_j⁺ = s²·δ_ij, so every row has loss log(1 + (N−1)·e^(−s²));
    # the penalty mean_i(|f_i|² + |f_i⁺|²) = 2s².
    f = scale * torch.eye(n, dtype=torch.float64)
    want = math.log1p((n - 1) * math.exp(-(scale**2)))
    assert abs(float(n_pair(f, f)) - want) < TOL
    assert abs(float(n_pair(f, f, reduction="sum")) - n * want) < TOL
    torch.testing.assert_close(
        n_pair(f, f, reduction="none"),
        torch.full((n,), want, dtype=torch.float64),
        rtol=0,
        atol=TOL,
    )
    lam = 0.05
    assert abs(float(n_pair(f, f, l2_reg=lam)) - (want + lam * 2 * scale**2)) < TOL
    got = n_pair(f, f, l2_reg=lam, reduction="sum")
    assert abs(float(got) - n * (want + lam * 2 * scale**2)) < TOL


def test_orthogonal_positives_give_log_n():
    # Anchors e_i, positives e_{i+N} (all orthogonal): every logit is 0, loss = log N.
    e = torch.eye(8, dtype=torch.float64)
    assert abs(float(n_pair(e[:4], e[4:])) - math.log(4)) < TOL


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(reduction):
    a, p = _data(2, n=6, d=3)
    a.requires_grad_(True)
    p.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, y: n_pair(x, y, l2_reg=0.02, reduction=reduction), (a, p)
    )
    aids = torch.tensor([0, 1, 0, 2, 1, 3])
    assert torch.autograd.gradcheck(
        lambda x, y: n_pair(x, y, anchor_ids=aids, reduction=reduction), (a, p)
    )


# ----------------------------------------------------------------------------- PML parity


def _pml_batch(seed, n_classes=6, d=5):
    """2·n_classes embeddings, each label exactly twice, in a shuffled order."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat(2)[torch.randperm(2 * n_classes, generator=g)]
    z = torch.randn(2 * n_classes, d, generator=g, dtype=torch.float64)
    return z, labels


def _pml_selection(labels):
    """The pair PML uses per label: convert_to_pos_pairs_with_unique_labels takes all positive
    pairs in row-major order (torch.where) and keeps, per label, the first one found (np.unique
    return_index), ordered by label value. With each label twice that is
    (first occurrence, second occurrence), labels ascending."""
    anchors, positives = [], []
    lab = labels.tolist()
    for c in sorted(set(lab)):
        where = [i for i, x in enumerate(lab) if x == c]
        anchors.append(where[0])
        positives.append(where[1])
    return torch.tensor(anchors), torch.tensor(positives)


def test_pml_selection_is_understood():
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

    _, labels = _pml_batch(3)
    a, p = lmu.convert_to_pos_pairs_with_unique_labels(None, labels)
    ea, ep = _pml_selection(labels)
    assert torch.equal(a, ea) and torch.equal(p, ep)


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("seed", [4, 5])
def test_pml_parity(seed, normalized):
    # Semantic difference: PML's default DotProductSimilarity has normalize_embeddings=True,
    # so NPairsLoss() scores *cosine* similarities, while contrastkit's n_pair uses raw inner
    # products (Sohn 2016; hence its l2_reg). PML's default therefore equals n_pair on
    # L2-normalised rows, and PML with DotProductSimilarity(normalize_embeddings=False) equals
    # n_pair on the raw rows. Both are checked (values and gradients w.r.t. the embeddings).
    import torch.nn.functional as F
    from pytorch_metric_learning.distances import DotProductSimilarity
    from pytorch_metric_learning.losses import NPairsLoss
    from pytorch_metric_learning.reducers import MeanReducer

    z, labels = _pml_batch(seed)
    if normalized:
        pml = NPairsLoss()
        assert isinstance(pml.distance, DotProductSimilarity)
        assert pml.distance.normalize_embeddings
    else:
        pml = NPairsLoss(distance=DotProductSimilarity(normalize_embeddings=False))
    # the per-pair cross-entropies are averaged by a MeanReducer: reduction="mean"
    assert type(pml.reducer) is MeanReducer
    ia, ip = _pml_selection(labels)

    zp = z.clone().requires_grad_(True)
    v_pml = pml(zp, labels)
    (g_pml,) = torch.autograd.grad(v_pml, zp)
    zc = z.clone().requires_grad_(True)
    emb = F.normalize(zc, dim=1) if normalized else zc
    v_ck = n_pair(emb[ia], emb[ip], reduction="mean")
    (g_ck,) = torch.autograd.grad(v_ck, zc)
    assert abs(float(v_pml.detach()) - float(v_ck.detach())) < 1e-5
    torch.testing.assert_close(g_ck, g_pml, rtol=0, atol=1e-5)
    # the labels passed as ids change nothing (one pair per class)
    e = emb.detach()
    v_ids = n_pair(e[ia], e[ip], anchor_ids=labels[ia], positive_ids=labels[ip])
    assert abs(float(v_ids) - float(v_pml.detach())) < 1e-5


def test_pml_default_differs_from_raw_dot_products():
    # documents the difference above: on unnormalised rows the two losses disagree
    from pytorch_metric_learning.losses import NPairsLoss

    z, labels = _pml_batch(4)
    ia, ip = _pml_selection(labels)
    assert abs(float(NPairsLoss()(z, labels)) - float(n_pair(z[ia], z[ip]))) > 1e-2


# ----------------------------------------------------------------------------- module form


def test_module_equals_function():
    a, p = _data(6)
    aids = torch.tensor([0, 1, 0, 2, 1, 3])
    for reduction in REDUCTIONS:
        mod = NPairLoss(l2_reg=0.01, reduction=reduction)
        torch.testing.assert_close(
            mod(a, p), n_pair(a, p, l2_reg=0.01, reduction=reduction), rtol=0, atol=0
        )
        torch.testing.assert_close(
            mod(a, p, anchor_ids=aids),
            n_pair(a, p, anchor_ids=aids, l2_reg=0.01, reduction=reduction),
            rtol=0,
            atol=0,
        )


# ----------------------------------------------------------------------------- bf16


@pytest.mark.parametrize("l2_reg", [0.0, 0.01])
def test_bf16_inputs_give_float32_close_to_float64(l2_reg):
    a, p = _data(7)
    ab, pb = a.to(torch.bfloat16), p.to(torch.bfloat16)
    for reduction in ("mean", "sum"):
        got = n_pair(ab, pb, l2_reg=l2_reg, reduction=reduction)
        want = n_pair(ab.double(), pb.double(), l2_reg=l2_reg, reduction=reduction)
        assert got.dtype == torch.float32
        assert abs(float(got) - float(want)) < 1e-2


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    a, p = _data(8)
    with pytest.raises(ValueError, match="same number of rows"):
        n_pair(a, p[:5])
    with pytest.raises(ValueError, match="same number of rows"):
        NPairLoss()(a[:4], p)
    with pytest.raises(ValueError, match="same embedding dimension"):
        n_pair(a, p[:, :3])
    with pytest.raises(ValueError, match="l2_reg must be ≥ 0"):
        n_pair(a, p, l2_reg=-0.1)
    with pytest.raises(ValueError, match="l2_reg must be ≥ 0"):
        n_pair(a, p, l2_reg=float("nan"))
    with pytest.raises(ValueError, match=r"reduction must be one of .*Did you mean 'mean'\?"):
        n_pair(a, p, reduction="meen")
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        NPairLoss(reduction="mean_nonzero")
    with pytest.raises(ValueError, match="has 5 ids but query has 6 rows"):
        n_pair(a, p, anchor_ids=torch.arange(5))
    with pytest.raises(TypeError, match="must hold integer ids"):
        n_pair(a, p, anchor_ids=torch.arange(6).double())
    bad = p.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="key contains non-finite values"):
        n_pair(a, bad)
    with pytest.raises(ValueError, match="empty batch"):
        n_pair(a[:0], p[:0])
    # an anchor whose class has no positive
    with pytest.raises(ValueError, match="have no positive"):
        n_pair(a, p, anchor_ids=torch.arange(6), positive_ids=torch.arange(6) + 1)
