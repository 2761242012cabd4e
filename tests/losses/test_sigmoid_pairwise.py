"""sigmoid_pairwise (SigLIP) against an explicit pair loop, closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import DegenerateBatchWarning, SigmoidPairwiseLoss, sigmoid_pairwise

TOL = 1e-10
METRICS = ("cosine", "dot", "euclidean", "squared_euclidean")
REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- reference


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sim(u, v, similarity):
    dot = sum(a * b for a, b in zip(u, v))
    if similarity == "dot":
        return dot
    if similarity == "cosine":
        nu = math.sqrt(sum(a * a for a in u))
        nv = math.sqrt(sum(b * b for b in v))
        return dot / (nu * nv)
    sq = sum((a - b) ** 2 for a, b in zip(u, v))
    return -sq if similarity == "squared_euclidean" else -math.sqrt(sq)


def ref_sigmoid(
    query, key, qids, kids=None, *, temperature, bias, similarity="cosine", reduction="mean"
):
    """(1/N) Σ_i Σ_{j∈A(i)} −log σ(z_ij·(s_ij/τ + b)), −log σ(x) = softplus(−x)."""
    Q = query.tolist()
    K = Q if key is None else key.tolist()
    qi = qids.tolist()
    ki = qi if kids is None else kids.tolist()
    rows = []
    for i in range(len(Q)):
        total = 0.0
        for j in range(len(K)):
            if key is None and i == j:
                continue
            z = 1.0 if qi[i] == ki[j] else -1.0
            logit = _sim(Q[i], K[j], similarity) / temperature + bias
            total += _softplus(-z * logit)
        rows.append(total)
    if reduction == "none":
        return rows
    if reduction == "sum":
        return sum(rows)
    return sum(rows) / len(rows)


def assert_matches(got, want, tol=TOL):
    got = got.detach()
    if isinstance(want, list):
        assert got.shape == (len(want),)
        for g, w in zip(got.tolist(), want):
            assert abs(g - w) < tol, (g, w)
    else:
        assert got.dim() == 0
        assert abs(float(got) - want) < tol, (float(got), want)


def _data(seed=0, n=6, m=5, d=4, scale=0.6):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, d, generator=g, dtype=torch.float64) * scale
    k = torch.randn(m, d, generator=g, dtype=torch.float64) * scale
    qids = torch.tensor([0, 1, 0, 2, 1, 3])[:n]  # id 2 and 3 have no other row: no positive
    kids = torch.tensor([1, 0, 2, 4, 0])[:m]
    return q, k, qids, kids


TEMP_BIAS = [(0.1, -10.0), (0.5, 0.0), (1.0, 2.0), (2.0, -1.5)]


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize(("temperature", "bias"), TEMP_BIAS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("similarity", METRICS)
@pytest.mark.parametrize("use_key", [False, True])
def test_matches_reference(use_key, similarity, reduction, temperature, bias):
    q, k, qids, kids = _data()
    key, key_ids = (k, kids) if use_key else (None, None)
    kw = dict(temperature=temperature, bias=bias, similarity=similarity, reduction=reduction)
    got = sigmoid_pairwise(q, key, query_ids=qids, key_ids=key_ids, **kw)
    assert got.dtype == torch.float64
    assert_matches(got, ref_sigmoid(q, key, qids, key_ids, **kw))


@pytest.mark.parametrize("use_key", [False, True])
def test_tensor_temperature_and_bias_match_floats(use_key):
    q, k, qids, kids = _data(1)
    key, key_ids = (k, kids) if use_key else (None, None)
    for t_dtype in (torch.float64, torch.float32):
        t = torch.tensor(0.25, dtype=t_dtype)
        b = torch.tensor(-1.5, dtype=t_dtype)
        got = sigmoid_pairwise(q, key, query_ids=qids, key_ids=key_ids, temperature=t, bias=b)
        assert got.dtype == torch.float64
        want = ref_sigmoid(q, key, qids, key_ids, temperature=float(t), bias=float(b))
        assert_matches(got, want)


def test_paired_image_text_with_arange_ids():
    # the SigLIP setting: key given, ids arange, one positive per row (the diagonal)
    q, k, _, _ = _data(2, n=5, m=5)
    ids = torch.arange(5)
    got = sigmoid_pairwise(q, k, query_ids=ids, key_ids=ids, temperature=0.1, bias=-10.0)
    assert_matches(got, ref_sigmoid(q, k, ids, ids, temperature=0.1, bias=-10.0))


# ----------------------------------------------------------------------------- analytic cases


@pytest.mark.parametrize(("temperature", "bias"), TEMP_BIAS)
def test_identical_embeddings_closed_form(temperature, bias):
    # All rows equal → cosine s_ij = 1 for every pair, logit = 1/τ + b. With key=None a row
    # with |P| positives among the N−1 others has loss
    #   |P|·softplus(−(1/τ + b)) + (N−1−|P|)·softplus(1/τ + b).
    z = torch.ones(6, 3, dtype=torch.float64) * 0.7
    ids = torch.tensor([0, 0, 0, 1, 1, 2])
    n_pos = [2, 2, 2, 1, 1, 0]
    x = 1.0 / temperature + bias
    rows = [p * _softplus(-x) + (5 - p) * _softplus(x) for p in n_pos]
    got = sigmoid_pairwise(z, query_ids=ids, temperature=temperature, bias=bias, reduction="none")
    assert_matches(got, rows)
    got = sigmoid_pairwise(z, query_ids=ids, temperature=temperature, bias=bias)
    assert abs(float(got) - sum(rows) / 6) < TOL


@pytest.mark.parametrize(("temperature", "bias"), TEMP_BIAS)
@pytest.mark.parametrize("n", [2, 4])
def test_orthogonal_paired_closed_form(n, temperature, bias):
    # query_i = key_i = e_i, ids arange: s_ii = 1 (positive), s_ij = 0 (negatives), so each row
    # costs softplus(−(1/τ + b)) + (N−1)·softplus(b).
    e = torch.eye(n, dtype=torch.float64)
    ids = torch.arange(n)
    want = _softplus(-(1.0 / temperature + bias)) + (n - 1) * _softplus(bias)
    for sim in ("cosine", "dot"):
        got = sigmoid_pairwise(
            e, e, query_ids=ids, key_ids=ids, temperature=temperature, bias=bias, similarity=sim
        )
        assert abs(float(got) - want) < TOL
    got = sigmoid_pairwise(
        e, e, query_ids=ids, key_ids=ids, temperature=temperature, bias=bias, reduction="sum"
    )
    assert abs(float(got) - n * want) < TOL


def test_orthogonal_all_negatives_closed_form():
    # key=None, distinct ids, orthogonal rows: every pair is a negative with logit b, so each
    # row costs (N−1)·softplus(b); no row needs a positive.
    e = torch.eye(5, dtype=torch.float64)
    with pytest.warns(DegenerateBatchWarning, match="sigmoid_pairwise: .* no positives"):
        got = sigmoid_pairwise(e, query_ids=torch.arange(5), temperature=0.3, bias=-2.0)
    assert abs(float(got) - 4 * _softplus(-2.0)) < TOL


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("similarity", METRICS)
@pytest.mark.parametrize("use_key", [False, True])
def test_gradcheck(use_key, similarity):
    q, k, qids, kids = _data(3, n=6, m=5, d=3)
    q.requires_grad_(True)
    k.requires_grad_(True)
    t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-0.5, dtype=torch.float64, requires_grad=True)
    if use_key:
        assert torch.autograd.gradcheck(
            lambda x, y, tt, bb: sigmoid_pairwise(
                x, y, query_ids=qids, key_ids=kids, temperature=tt, bias=bb, similarity=similarity
            ),
            (q, k, t, b),
        )
    else:
        assert torch.autograd.gradcheck(
            lambda x, tt, bb: sigmoid_pairwise(
                x, query_ids=qids, temperature=tt, bias=bb, similarity=similarity, reduction="sum"
            ),
            (q, t, b),
        )


# ----------------------------------------------------------------------------- module form


def test_module_parameters_temperature_and_equivalence():
    mod = SigmoidPairwiseLoss()
    names = dict(mod.named_parameters())
    assert set(names) == {"log_scale", "bias"}
    # SigLIP's t' = log(1/τ) = log 10 and b = −10 at initialisation
    assert abs(float(mod.log_scale.detach()) - math.log(10.0)) < 1e-6
    assert float(mod.bias.detach()) == -10.0
    # equal up to float32 rounding (exp(−x) and 1/exp(x) may differ in the last ulp)
    torch.testing.assert_close(mod.temperature, 1.0 / torch.exp(mod.log_scale), rtol=2e-7, atol=0)
    assert abs(float(mod.temperature.detach()) - 0.1) < 1e-7

    mod = SigmoidPairwiseLoss(temperature=0.25, bias=-1.0, similarity="dot", reduction="sum")
    torch.testing.assert_close(mod.temperature, 1.0 / torch.exp(mod.log_scale), rtol=2e-7, atol=0)
    assert abs(float(mod.temperature.detach()) - 0.25) < 1e-7
    q, k, qids, kids = _data(4)
    got = mod(q, k, query_ids=qids, key_ids=kids)
    want = sigmoid_pairwise(
        q,
        k,
        query_ids=qids,
        key_ids=kids,
        temperature=mod.temperature.detach(),
        bias=mod.bias.detach(),
        similarity="dot",
        reduction="sum",
    )
    torch.testing.assert_close(got.detach(), want, rtol=0, atol=0)
    # equal to the float hyper-parameters up to the float32 storage of log(1/τ)
    want_f = ref_sigmoid(
        q, k, qids, kids, temperature=0.25, bias=-1.0, similarity="dot", reduction="sum"
    )
    assert abs(float(got.detach()) - want_f) < 1e-5


def test_module_parameters_get_gradients():
    q, k, qids, kids = _data(5)
    mod = SigmoidPairwiseLoss(temperature=0.5, bias=-1.0)
    loss = mod(q, k, query_ids=qids, key_ids=kids)
    loss.backward()
    for p in (mod.log_scale, mod.bias):
        assert p.grad is not None and torch.isfinite(p.grad) and float(p.grad) != 0.0

    # the gradients are those of the loss as a function of (log_scale, bias): τ = exp(−log_scale)
    ls = mod.log_scale.detach().double().requires_grad_(True)
    b = mod.bias.detach().double().requires_grad_(True)
    ref = sigmoid_pairwise(q, k, query_ids=qids, key_ids=kids, temperature=torch.exp(-ls), bias=b)
    g_ls, g_b = torch.autograd.grad(ref, (ls, b))
    assert abs(float(mod.log_scale.grad) - float(g_ls)) < 1e-5
    assert abs(float(mod.bias.grad) - float(g_b)) < 1e-5
    assert torch.autograd.gradcheck(
        lambda s, bb: sigmoid_pairwise(
            q, k, query_ids=qids, key_ids=kids, temperature=torch.exp(-s), bias=bb
        ),
        (ls, b),
    )

    # one SGD step moves both
    before = (float(mod.log_scale.detach()), float(mod.bias.detach()))
    torch.optim.SGD(mod.parameters(), lr=0.1).step()
    assert float(mod.log_scale.detach()) != before[0] and float(mod.bias.detach()) != before[1]


def test_module_not_learnable_uses_buffers():
    mod = SigmoidPairwiseLoss(temperature=0.2, bias=0.5, learnable=False)
    assert list(mod.parameters()) == []
    assert set(dict(mod.named_buffers())) == {"log_scale", "bias"}
    q, _, qids, _ = _data(6)
    got = mod(q, query_ids=qids)
    assert not got.requires_grad
    assert abs(float(got) - ref_sigmoid(q, None, qids, temperature=0.2, bias=0.5)) < 1e-5


# ----------------------------------------------------------------------------- bf16


@pytest.mark.parametrize("use_key", [False, True])
def test_bf16_inputs_give_float32_close_to_float64(use_key):
    q, k, qids, kids = _data(7)
    qb, kb = q.to(torch.bfloat16), k.to(torch.bfloat16)
    key_b, key_d, key_ids = (kb, kb.double(), kids) if use_key else (None, None, None)
    for temperature, bias in ((0.1, -10.0), (0.5, 0.0)):
        for reduction in ("mean", "sum"):
            kw = dict(temperature=temperature, bias=bias, reduction=reduction)
            got = sigmoid_pairwise(qb, key_b, query_ids=qids, key_ids=key_ids, **kw)
            want = sigmoid_pairwise(qb.double(), key_d, query_ids=qids, key_ids=key_ids, **kw)
            assert got.dtype == torch.float32
            assert abs(float(got) - float(want)) < 1e-2


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    q, k, qids, kids = _data(8)
    for bad_t in (0.0, -0.1, float("nan"), float("inf"), torch.tensor(0.0), torch.tensor(-1.0)):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            sigmoid_pairwise(q, query_ids=qids, temperature=bad_t)
    with pytest.raises(ValueError, match="temperature must be a scalar"):
        sigmoid_pairwise(q, query_ids=qids, temperature=torch.tensor([0.1, 0.2]))
    for bad_t in (0.0, -2.0):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            SigmoidPairwiseLoss(temperature=bad_t)
    with pytest.raises(ValueError, match="same embedding dimension"):
        sigmoid_pairwise(q, k[:, :3], query_ids=qids, key_ids=kids)
    with pytest.raises(ValueError, match="key_ids has 4 ids but key has 5 rows"):
        sigmoid_pairwise(q, k, query_ids=qids, key_ids=kids[:4])
    with pytest.raises(ValueError, match="key_ids was given without key"):
        sigmoid_pairwise(q, query_ids=qids, key_ids=qids)
    with pytest.raises(TypeError, match="must hold integer ids"):
        sigmoid_pairwise(q, query_ids=qids.to(torch.float32))
    bad = q.clone()
    bad[1, 1] = float("inf")
    with pytest.raises(ValueError, match=r"non-finite values \(0 NaN, 1 inf\)"):
        sigmoid_pairwise(bad, query_ids=qids)
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite values \(1 NaN"):
        sigmoid_pairwise(q, bad[:5], query_ids=qids, key_ids=kids)
    with pytest.raises(ValueError, match="empty batch"):
        sigmoid_pairwise(q[:0], query_ids=qids[:0])
    with pytest.raises(ValueError, match=r"reduction must be one of .*Did you mean 'sum'\?"):
        sigmoid_pairwise(q, query_ids=qids, reduction="sun")
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        SigmoidPairwiseLoss(reduction="mean_nonzero")
    with pytest.raises(ValueError, match=r"similarity must be one of .*Did you mean 'cosine'"):
        sigmoid_pairwise(q, query_ids=qids, similarity="cosin")
