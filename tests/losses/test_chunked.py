"""The memory-linear (chunked) path of InfoNCE and the losses built on it.

The loop-reference comparison of every scenario runs on both paths in ``test_info_nce.py``;
here: value and gradient equality with the plain path (float64 1e-10, float32 1e-5),
``gradcheck``, what is saved for backward (linear in N), peak memory at a size whose table would
not fit, and the automatic choice.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from contrastkit.losses import DegenerateBatchWarning, InfoNCELoss, SupConLoss
from contrastkit.losses.functional import (
    debiased_info_nce,
    hard_negative_info_nce,
    info_nce,
    sup_con,
)
from contrastkit.losses.info_nce import CHUNKED_ABOVE, use_chunked

F64 = torch.float64


def _inputs(case: str, dtype: torch.dtype, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=F64).to(dtype).requires_grad_()

    n, d = 50, 16
    if case == "simclr":
        return dict(query=randn(n, d), query_ids=torch.arange(n // 2).repeat(2))
    if case == "supcon":  # many positives per row
        return dict(query=randn(n, d), query_ids=torch.randint(0, 4, (n,), generator=g))
    if case == "clip_symmetric":
        return dict(query=randn(n, d), key=randn(n, d), query_ids=torch.arange(n), symmetric=True)
    if case == "queue":  # key + extra negatives whose ids can hit the row's own id
        return dict(
            query=randn(n, d),
            key=randn(n, d),
            query_ids=torch.arange(n),
            negatives=randn(70, d),
            negative_ids=torch.randint(0, 2 * n, (70,), generator=g),
        )
    if case == "ignore_rows":  # singletons have no positive
        ids = torch.randint(0, 30, (n,), generator=g)
        return dict(query=randn(n, d), query_ids=ids, ignore_rows_without_positive=True)
    raise KeyError(case)


CASES = ["simclr", "supcon", "clip_symmetric", "queue", "ignore_rows"]


def _grads(loss, kw):
    tensors = [kw[k] for k in ("query", "key", "negatives") if k in kw]
    return torch.autograd.grad(loss, tensors)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype, tol", [(F64, 1e-10), (torch.float32, 1e-5)])
def test_chunked_equals_plain_value_and_gradients(case, similarity, dtype, tol):
    kw = _inputs(case, dtype)
    temperature = 0.1 if similarity == "cosine" else 1.0
    plain = info_nce(**kw, temperature=temperature, similarity=similarity, chunked=False)
    plain_grads = _grads(plain, kw)
    for block_rows in (7, 50, None):
        chunk = info_nce(
            **kw,
            temperature=temperature,
            similarity=similarity,
            chunked=True,
            block_rows=block_rows,
        )
        assert chunk.dtype == plain.dtype
        torch.testing.assert_close(chunk, plain, atol=tol, rtol=tol)
        for a, b in zip(_grads(chunk, kw), plain_grads):
            torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_chunked_reductions(reduction):
    kw = _inputs("ignore_rows", F64)
    plain = info_nce(**kw, reduction=reduction, chunked=False)
    chunk = info_nce(**kw, reduction=reduction, chunked=True, block_rows=9)
    torch.testing.assert_close(chunk, plain, atol=1e-10, rtol=0)


def test_learnable_temperature_gets_the_same_gradient():
    kw = _inputs("queue", F64)
    grads = []
    for chunked in (False, True):
        loss_fn = InfoNCELoss(
            temperature=0.07, learn_temperature=True, chunked=chunked, block_rows=11
        ).double()
        loss = loss_fn(**kw)
        (g,) = torch.autograd.grad(loss, [loss_fn.log_temperature])
        grads.append(g)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-10, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_gradcheck_chunked(case):
    kw = _inputs(case, F64)
    kw = {k: (v[:12] if k in ("query", "key") else v) for k, v in kw.items()}
    kw["query_ids"] = kw["query_ids"][:12]
    if "negatives" in kw:
        kw["negatives"], kw["negative_ids"] = kw["negatives"][:9], kw["negative_ids"][:9] % 12
    if case == "simclr":
        kw["query_ids"] = torch.arange(6).repeat(2)
    if case == "supcon":
        kw["query_ids"] = torch.tensor([0, 1, 2, 3] * 3)
    names = [k for k in ("query", "key", "negatives") if k in kw]
    tau = torch.tensor(0.3, dtype=F64, requires_grad=True)
    rest = {k: v for k, v in kw.items() if k not in names}

    def f(*tensors):
        *emb, t = tensors
        return info_nce(**dict(zip(names, emb)), **rest, temperature=t, chunked=True, block_rows=5)

    inputs = (*(kw[k].detach().requires_grad_() for k in names), tau)
    assert torch.autograd.gradcheck(f, inputs)


def _saved_bytes(fn) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def test_saved_for_backward_grows_linearly_not_quadratically():
    d = 32

    def saved(n, chunked):
        q = torch.randn(n, d, requires_grad=True)
        ids = torch.arange(n // 2).repeat(2)
        return _saved_bytes(lambda: info_nce(q, query_ids=ids, chunked=chunked))

    small, large = saved(512, True), saved(2048, True)
    assert large <= 4.5 * small  # 4× the rows: ~4× the memory
    assert large < 2048 * d * 4 * 16  # a few (N, D) tensors, never an (N, N) table
    assert saved(2048, False) > 2048 * 2048 * 4  # the plain path keeps the table


def test_exact_loss_with_a_table_that_would_not_fit_stays_small():
    """N = 32,768 views: the float32 table alone is 4 GiB; the chunked step needs ~0.1 GiB."""
    code = textwrap.dedent(
        """
        import resource, torch
        from contrastkit.losses.functional import info_nce
        torch.manual_seed(0)
        n, d = 32768, 16
        q = torch.randn(n, d, requires_grad=True)
        ids = torch.arange(n // 2).repeat(2)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        loss = info_nce(q, query_ids=ids, temperature=0.2)
        loss.backward()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert torch.isfinite(loss) and torch.isfinite(q.grad).all()
        print((peak - base) / 2**20)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    extra_gib = float(out.stdout.strip())  # ru_maxrss is in KiB on Linux
    assert extra_gib < 0.5, extra_gib


def test_automatic_choice_and_unsupported_similarity():
    side = int(CHUNKED_ABOVE**0.5)
    assert not use_chunked(None, "cosine", side, side, "info_nce")
    assert use_chunked(None, "cosine", side, side + 1, "info_nce")
    assert use_chunked(None, "dot", 4 * side, 4 * side, "info_nce")
    assert not use_chunked(None, "euclidean", 4 * side, 4 * side, "info_nce")
    assert not use_chunked(False, "cosine", 4 * side, 4 * side, "info_nce")
    with pytest.raises(ValueError, match="chunked=False"):
        info_nce(
            torch.randn(4, 3),
            query_ids=torch.arange(2).repeat(2),
            similarity="euclidean",
            chunked=True,
        )


def test_rows_without_candidates_give_finite_gradients():
    q = torch.randn(1, 5, dtype=F64, requires_grad=True)
    # one row: no positive and no negative, each warned once
    with pytest.warns(DegenerateBatchWarning) as caught:
        loss = info_nce(
            q, query_ids=torch.tensor([0]), ignore_rows_without_positive=True, chunked=True
        )
    found = sorted(str(w.message).split(";")[0] for w in caught)
    assert found == [
        "info_nce: every row of the batch has the same label: no negatives",
        "info_nce: no two rows of the batch share a label: no positives",
    ]
    (g,) = torch.autograd.grad(loss, [q])
    assert float(loss.detach()) == 0.0 and torch.equal(g, torch.zeros_like(g))


def test_bf16_input_gives_a_float32_loss_close_to_float64():
    kw = _inputs("supcon", F64)
    exact = info_nce(**kw, chunked=False)
    low = {k: (v.detach().bfloat16() if k == "query" else v) for k, v in kw.items()}
    approx = info_nce(**low, chunked=True, block_rows=8)
    assert approx.dtype == torch.float32
    assert abs(float(approx) - float(exact)) < 1e-2


def test_sup_con_and_module_forward_the_choice():
    kw = _inputs("supcon", F64)
    a = sup_con(kw["query"], kw["query_ids"], chunked=True, block_rows=4)
    b = sup_con(kw["query"], kw["query_ids"], chunked=False)
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    c = SupConLoss(temperature=0.1, chunked=True, block_rows=4)(kw["query"], kw["query_ids"])
    d = SupConLoss(temperature=0.1, chunked=False)(kw["query"], kw["query_ids"])
    torch.testing.assert_close(c, d, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "loss_fn, extra",
    [
        (debiased_info_nce, dict(tau_plus=0.1)),
        (hard_negative_info_nce, dict(tau_plus=0.1, beta=1.0)),
    ],
)
@pytest.mark.parametrize("case", ["simclr", "supcon", "queue"])
def test_reweighted_losses_chunked_equal_plain(loss_fn, extra, case):
    kw = _inputs(case, F64)
    plain = loss_fn(**kw, **extra, chunked=False)
    chunk = loss_fn(**kw, **extra, chunked=True, block_rows=7)
    torch.testing.assert_close(chunk, plain, atol=1e-10, rtol=0)
    for a, b in zip(_grads(chunk, kw), _grads(plain, kw)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("case", ["supcon", "queue"])
def test_row_weighted_upstream_gradient_takes_the_recomputing_backward(case):
    """Equal row weights use the products formed in the forward; other weights recompute."""
    kw = _inputs(case, F64)
    w = torch.rand(kw["query"].shape[0], generator=torch.Generator().manual_seed(3), dtype=F64)
    plain = (info_nce(**kw, reduction="none", chunked=False) * w).sum()
    chunk = (info_nce(**kw, reduction="none", chunked=True, block_rows=9) * w).sum()
    torch.testing.assert_close(chunk, plain, atol=1e-10, rtol=0)
    for a, b in zip(_grads(chunk, kw), _grads(plain, kw)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("temperature", [0.01, 0.05])
@pytest.mark.parametrize("dtype, tol", [(F64, 1e-10), (torch.float32, 1e-4)])
def test_small_temperatures_take_the_exact_row_maximum(temperature, dtype, tol):
    """1/τ = 100 would underflow exp with the norm bound as shift: the exact maximum is used."""
    kw = _inputs("queue", dtype)
    plain = info_nce(**kw, temperature=temperature, chunked=False)
    chunk = info_nce(**kw, temperature=temperature, chunked=True, block_rows=16)
    assert torch.isfinite(chunk)
    torch.testing.assert_close(chunk, plain, atol=tol, rtol=tol)
    for a, b in zip(_grads(chunk, kw), _grads(plain, kw)):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def test_chunked_path_ignores_bf16_autocast():
    """Under autocast the products stay in float32: the same loss as without autocast."""
    kw = _inputs("supcon", torch.float32)
    exact = info_nce(**kw, chunked=True, block_rows=8)
    g_exact = _grads(exact, kw)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = info_nce(**kw, chunked=True, block_rows=8)
        g_under = _grads(under, kw)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, exact, atol=1e-6, rtol=1e-6)
    for a, b in zip(g_under, g_exact):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
