"""The in-batch sampled softmax with logQ correction: loop reference, analytic cases,
gradients, parity with info_nce, the masking of duplicates and the module form.

The reference is a plain-Python transcription of the docstring of
:func:`contrastkit.losses.sampled_softmax.sampled_softmax`::

    logit_ij = s(q_i, k_j)/τ − log q_j
    loss_i   = −logit_ii + log Σ_{j∈C(i)} exp(logit_ij)

with ``C(i)`` every key but those j ≠ i with key_ids[j] == key_ids[i] or (with query ids)
query_ids[j] == query_ids[i].
"""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses import DegenerateBatchWarning
from contrastkit.losses.info_nce import info_nce
from contrastkit.losses.sampled_softmax import SampledSoftmaxLoss, sampled_softmax

F64 = torch.float64


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def reference(q, k, *, qids=None, kids=None, log_q=None, tau=0.05, similarity="cosine"):
    q, k = q.tolist(), k.tolist()
    n = len(q)

    def sim(a, b):
        dot = math.fsum(x * y for x, y in zip(a, b))
        if similarity == "dot":
            return dot
        return dot / math.sqrt(math.fsum(x * x for x in a) * math.fsum(x * x for x in b))

    rows = []
    for i in range(n):
        logits = []
        for j in range(n):
            if j != i and kids is not None and kids[j] == kids[i]:
                continue
            if j != i and qids is not None and qids[j] == qids[i]:
                continue
            val = sim(q[i], k[j]) / tau - (0.0 if log_q is None else float(log_q[j]))
            logits.append((j, val))
        top = max(v for _, v in logits)
        lse = top + math.log(math.fsum(math.exp(v - top) for _, v in logits))
        rows.append(lse - dict(logits)[i])
    return rows


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("masking", ["none", "items", "items+users"])
def test_matches_the_loop_reference(similarity, masking):
    q, k = randn(7, 5, seed=1), randn(7, 5, seed=2)
    kids = torch.tensor([3, 1, 3, 2, 1, 0, 4]) if masking != "none" else None
    qids = torch.tensor([0, 0, 1, 2, 3, 3, 4]) if masking == "items+users" else None
    log_q = torch.log(torch.tensor([0.2, 0.1, 0.2, 0.05, 0.1, 0.3, 0.05], dtype=F64))
    tau = 0.05 if similarity == "cosine" else 0.7
    got = sampled_softmax(
        q, k, query_ids=qids, key_ids=kids, key_log_q=log_q, temperature=tau,
        similarity=similarity, reduction="none",
    )  # fmt: skip
    want = reference(q, k, qids=qids, kids=kids, log_q=log_q, tau=tau, similarity=similarity)
    torch.testing.assert_close(got, torch.tensor(want, dtype=F64), atol=1e-10, rtol=0)
    mean = sampled_softmax(
        q, k, query_ids=qids, key_ids=kids, key_log_q=log_q, temperature=tau,
        similarity=similarity,
    )  # fmt: skip
    assert float(mean) == pytest.approx(sum(want) / len(want), abs=1e-10)
    total = sampled_softmax(
        q, k, query_ids=qids, key_ids=kids, key_log_q=log_q, temperature=tau,
        similarity=similarity, reduction="sum",
    )  # fmt: skip
    assert float(total) == pytest.approx(sum(want), abs=1e-9)


def test_analytic_two_rows():
    # orthonormal queries and keys: s = identity; loss_i = log(1 + exp(−1/τ − Δ)) where the
    # other key's logQ correction shifts it by −log q_other + log q_own
    q = torch.eye(2, dtype=F64)
    k = torch.eye(2, dtype=F64)
    tau = 0.5
    plain = sampled_softmax(q, k, temperature=tau, reduction="none")
    expected = math.log(1 + math.exp(-1 / tau))
    torch.testing.assert_close(plain, torch.full((2,), expected, dtype=F64))
    log_q = torch.log(torch.tensor([0.9, 0.1], dtype=F64))
    corrected = sampled_softmax(q, k, key_log_q=log_q, temperature=tau, reduction="none")
    # row 0: positive logit 1/τ − log 0.9, negative 0 − log 0.1
    l0 = math.log(1 + math.exp(-1 / tau - math.log(0.1) + math.log(0.9)))
    l1 = math.log(1 + math.exp(-1 / tau - math.log(0.9) + math.log(0.1)))
    torch.testing.assert_close(corrected, torch.tensor([l0, l1], dtype=F64))


def test_equals_info_nce_without_log_q_and_with_distinct_ids():
    q, k = randn(9, 6, seed=3), randn(9, 6, seed=4)
    for similarity in ("cosine", "dot"):
        ours = sampled_softmax(q, k, temperature=0.2, similarity=similarity)
        same_ids = sampled_softmax(
            q, k, key_ids=torch.arange(9), query_ids=torch.arange(9) + 5, temperature=0.2,
            similarity=similarity,
        )  # fmt: skip
        theirs = info_nce(
            q, k, query_ids=torch.arange(9), key_ids=torch.arange(9), temperature=0.2,
            similarity=similarity,
        )  # fmt: skip
        torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)
        torch.testing.assert_close(same_ids, theirs, atol=1e-12, rtol=0)


def test_a_constant_log_q_changes_nothing_and_a_popular_negative_counts_less():
    q, k = randn(6, 4, seed=5), randn(6, 4, seed=6)
    base = sampled_softmax(q, k, reduction="none")
    shifted = sampled_softmax(q, k, key_log_q=torch.full((6,), -3.0, dtype=F64), reduction="none")
    torch.testing.assert_close(shifted, base, atol=1e-12, rtol=0)
    # raising one key's q lowers its logit as a negative (every other row's loss drops) and as
    # a positive (its own row's loss rises)
    log_q = torch.zeros(6, dtype=F64)
    log_q[2] = 2.0
    moved = sampled_softmax(q, k, key_log_q=log_q, reduction="none")
    others = [i for i in range(6) if i != 2]
    assert bool((moved[others] < base[others]).all())
    assert float(moved[2]) > float(base[2])


def test_duplicates_of_the_positive_item_are_not_negatives():
    q, k = randn(4, 3, seed=7), randn(4, 3, seed=8)
    k[2] = k[0]  # item 0 twice in the batch
    kids = torch.tensor([10, 11, 10, 12])
    masked = sampled_softmax(q, k, key_ids=kids, reduction="none")
    # rows 0 and 2 equal the loss over the batch without the other copy
    keep0 = torch.tensor([0, 1, 3])
    row0 = sampled_softmax(q[keep0], k[keep0], reduction="none")[0]
    torch.testing.assert_close(masked[0], row0, atol=1e-12, rtol=0)
    keep2 = torch.tensor([1, 2, 3])
    row2 = sampled_softmax(q[keep2], k[keep2], reduction="none")[1]
    torch.testing.assert_close(masked[2], row2, atol=1e-12, rtol=0)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_gradcheck_float64(similarity):
    q = randn(5, 3, seed=9).requires_grad_()
    k = randn(5, 3, seed=10).requires_grad_()
    tau = torch.tensor(0.3, dtype=F64, requires_grad=True)
    kids = torch.tensor([0, 1, 0, 2, 3])
    qids = torch.tensor([0, 1, 2, 2, 3])
    log_q = torch.log(torch.tensor([0.3, 0.2, 0.3, 0.1, 0.1], dtype=F64))

    def f(q, k, tau):
        return sampled_softmax(
            q, k, query_ids=qids, key_ids=kids, key_log_q=log_q, temperature=tau,
            similarity=similarity,
        )  # fmt: skip

    assert torch.autograd.gradcheck(f, (q, k, tau))


def test_no_negatives_warns_and_gives_zero_on_the_graph():
    q, k = randn(3, 4, seed=11).requires_grad_(), randn(3, 4, seed=12)
    with pytest.warns(DegenerateBatchWarning, match="sampled_softmax"):
        loss = sampled_softmax(q, k, key_ids=torch.tensor([5, 5, 5]))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(q.grad, torch.zeros_like(q))


def test_bad_inputs_raise_clear_errors():
    q, k = randn(4, 3, seed=13), randn(4, 3, seed=14)
    with pytest.raises(ValueError, match="same shape"):
        sampled_softmax(q, k[:3])
    with pytest.raises(ValueError, match="key_log_q must be a float"):
        sampled_softmax(q, k, key_log_q=torch.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        sampled_softmax(q, k, key_log_q=torch.tensor([0.0, -math.inf, 0.0, 0.0]))
    with pytest.raises(ValueError, match="key_ids has 2 ids"):
        sampled_softmax(q, k, key_ids=torch.arange(2))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        sampled_softmax(q, k, temperature=0.0)
    with pytest.raises(ValueError, match="similarity must be one of"):
        sampled_softmax(q, k, similarity="euclidean")
    with pytest.raises(ValueError, match="gather must be None"):
        sampled_softmax(q, k, gather="everything")


def test_module_form_takes_the_function_options():
    q, k = randn(6, 4, seed=15), randn(6, 4, seed=16)
    kids, log_q = torch.tensor([0, 1, 0, 2, 3, 4]), torch.linspace(-3, -1, 6, dtype=F64)
    fn = sampled_softmax(q, k, key_ids=kids, key_log_q=log_q, temperature=0.1, similarity="dot")
    module = SampledSoftmaxLoss(0.1, similarity="dot")
    torch.testing.assert_close(module(q, k, key_ids=kids, key_log_q=log_q), fn)
    assert list(module.options()) == ["temperature", "similarity", "reduction", "gather"]
    learned = SampledSoftmaxLoss(temperature=0.1, learn_temperature=True)
    assert [n for n, _ in learned.named_parameters()] == ["log_temperature"]
    learned(q, k).backward()
    assert learned.log_temperature.grad is not None
    with pytest.raises(TypeError, match="are options"):
        module(q, k, temperature=0.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        SampledSoftmaxLoss(reduction="avg")
