"""Degenerate batches (issue 17): one class (no negatives) or every label unique (no positives).

Every label-using loss warns once per process with a :class:`DegenerateBatchWarning` that names
the loss, what is missing, what the value means and the fix; the value stays finite with a
finite gradient. The InfoNCE family returns 0 on the graph when there is no negative. A normal
batch warns nothing. ``conftest.py`` re-arms the warnings before each test.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from contrastkit.losses import (
    ContrastiveMarginLoss,
    DebiasedInfoNCELoss,
    DegenerateBatchWarning,
    HardNegativeInfoNCELoss,
    InfoNCELoss,
    SigmoidPairwiseLoss,
    SupConLoss,
    TripletMarginLoss,
    contrastive_margin,
    debiased_info_nce,
    hard_negative_info_nce,
    info_nce,
    n_pair,
    nt_xent,
    reset_degenerate_warnings,
    sigmoid_pairwise,
    sup_con,
    triplet_margin,
)
from contrastkit.miners import BatchHardMiner

F64 = torch.float64
N = 6
NO_NEGATIVES = "every row of the batch has the same label: no negatives"
NO_POSITIVES = "no two rows of the batch share a label: no positives"

# name in the warning -> loss(z, ids); z is (N, D)
LOSSES = {
    "sup_con": lambda z, y: sup_con(z, y),
    "sup_con chunked": lambda z, y: sup_con(z, y, chunked=True, block_rows=2),
    "SupConLoss": lambda z, y: SupConLoss(temperature=0.1)(z, y),
    "info_nce": lambda z, y: info_nce(z, query_ids=y),
    "InfoNCELoss": lambda z, y: InfoNCELoss()(z, query_ids=y),
    "debiased_info_nce": lambda z, y: debiased_info_nce(z, query_ids=y, tau_plus=0.1),
    "debiased_info_nce chunked": lambda z, y: debiased_info_nce(
        z, query_ids=y, chunked=True, block_rows=2
    ),
    "DebiasedInfoNCELoss": lambda z, y: DebiasedInfoNCELoss(tau_plus=0.1)(z, query_ids=y),
    "hard_negative_info_nce": lambda z, y: hard_negative_info_nce(z, query_ids=y, beta=1.0),
    "HardNegativeInfoNCELoss": lambda z, y: HardNegativeInfoNCELoss()(z, query_ids=y),
    "n_pair": lambda z, y: n_pair(z[: N // 2], z[N // 2 :], anchor_ids=y[: N // 2]),
    "sigmoid_pairwise": lambda z, y: sigmoid_pairwise(z, query_ids=y),
    "SigmoidPairwiseLoss": lambda z, y: SigmoidPairwiseLoss()(z, query_ids=y),
    "triplet_margin": lambda z, y: triplet_margin(z, query_ids=y),
    "TripletMarginLoss": lambda z, y: TripletMarginLoss(margin=0.2)(z, query_ids=y),
    "TripletMarginLoss+miner": lambda z, y: TripletMarginLoss(miner=BatchHardMiner())(
        z, query_ids=y
    ),
    "contrastive_margin": lambda z, y: contrastive_margin(z, query_ids=y),
    "ContrastiveMarginLoss": lambda z, y: ContrastiveMarginLoss()(z, query_ids=y),
}
# the name each case's warning gives (a module warns under its function's name)
WARNS_AS = {
    "sup_con": "sup_con",
    "sup_con chunked": "sup_con",
    "SupConLoss": "sup_con",
    "info_nce": "info_nce",
    "InfoNCELoss": "info_nce",
    "debiased_info_nce": "debiased_info_nce",
    "debiased_info_nce chunked": "debiased_info_nce",
    "DebiasedInfoNCELoss": "debiased_info_nce",
    "hard_negative_info_nce": "hard_negative_info_nce",
    "HardNegativeInfoNCELoss": "hard_negative_info_nce",
    "n_pair": "n_pair",
    "sigmoid_pairwise": "sigmoid_pairwise",
    "SigmoidPairwiseLoss": "sigmoid_pairwise",
    "triplet_margin": "triplet_margin",
    "TripletMarginLoss": "triplet_margin",
    "TripletMarginLoss+miner": "triplet_margin",
    "contrastive_margin": "contrastive_margin",
    "ContrastiveMarginLoss": "contrastive_margin",
}
# the softmax losses: no negatives -> exactly 0 with zero gradients
ZERO_WITHOUT_NEGATIVES = {
    "sup_con",
    "sup_con chunked",
    "SupConLoss",
    "info_nce",
    "InfoNCELoss",
    "debiased_info_nce",
    "debiased_info_nce chunked",
    "DebiasedInfoNCELoss",
    "hard_negative_info_nce",
    "HardNegativeInfoNCELoss",
    "n_pair",
    "triplet_margin",
    "TripletMarginLoss",
    "TripletMarginLoss+miner",
}
# losses that accept a batch whose labels are all unique (the InfoNCE family raises instead)
ACCEPT_ALL_UNIQUE = [
    "sigmoid_pairwise",
    "SigmoidPairwiseLoss",
    "triplet_margin",
    "TripletMarginLoss",
    "contrastive_margin",
    "ContrastiveMarginLoss",
]


def _z(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, 5, generator=g, dtype=F64).requires_grad_(True)


def _degenerate(caught) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, DegenerateBatchWarning)]


def _call(case: str, z: torch.Tensor, y: torch.Tensor):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = LOSSES[case](z, y)
    return loss, _degenerate(caught)


@pytest.mark.parametrize("case", sorted(LOSSES))
def test_one_class_batch_warns_once_with_a_finite_value_and_gradient(case):
    z, y = _z(), torch.full((N,), 7)
    loss, first = _call(case, z, y)
    again, second = _call(case, _z(1), y)
    # an attached miner warns too, under its own name: once each
    names = sorted(str(w.message).split(":")[0] for w in first)
    want = sorted([WARNS_AS[case]] + (["batch_hard_triplets"] if "miner" in case else []))
    assert names == want and second == [], [str(w.message) for w in first + second]
    first = [w for w in first if str(w.message).startswith(f"{WARNS_AS[case]}:")]
    msg = str(first[0].message)
    assert msg.startswith(f"{WARNS_AS[case]}: {NO_NEGATIVES};"), msg
    assert "class-balanced sampler" in msg and "self-supervised recipe" in msg
    assert "\n" not in msg
    assert first[0].filename == __file__  # points at the caller, not into contrastkit
    assert loss.dim() == 0 and bool(torch.isfinite(loss)) and bool(torch.isfinite(again))
    (grad,) = torch.autograd.grad(loss, z, allow_unused=True)
    grad = torch.zeros_like(z) if grad is None else grad
    assert bool(torch.isfinite(grad).all())
    if case in ZERO_WITHOUT_NEGATIVES:
        assert float(loss.detach()) == 0.0 and torch.equal(grad, torch.zeros_like(z))


@pytest.mark.parametrize("case", ACCEPT_ALL_UNIQUE)
def test_all_unique_labels_warn_no_positives_once(case):
    z, y = _z(), torch.arange(N)
    loss, first = _call(case, z, y)
    _, second = _call(case, z, y)
    assert len(first) == 1 and second == []
    msg = str(first[0].message)
    assert msg.startswith(f"{WARNS_AS[case]}: {NO_POSITIVES};"), msg
    assert "two or more samples per class" in msg
    (grad,) = torch.autograd.grad(loss, z)
    assert bool(torch.isfinite(loss)) and bool(torch.isfinite(grad).all())


@pytest.mark.parametrize(
    "fn",
    [
        lambda z, y, **kw: sup_con(z, y, **kw),
        lambda z, y, **kw: info_nce(z, query_ids=y, chunked=True, **kw),
        lambda z, y, **kw: debiased_info_nce(z, query_ids=y, **kw),
        lambda z, y, **kw: hard_negative_info_nce(z, query_ids=y, **kw),
    ],
)
def test_infonce_family_all_unique_labels_raise_or_warn_when_rows_are_ignored(fn):
    z, y = _z(), torch.arange(N)
    with pytest.raises(ValueError, match="have no positive"):
        fn(z, y)
    with pytest.warns(DegenerateBatchWarning, match=NO_POSITIVES) as caught:
        loss = fn(z, y, ignore_rows_without_positive=True)
    assert len(_degenerate(caught)) == 1
    (grad,) = torch.autograd.grad(loss, z)
    assert float(loss.detach()) == 0.0 and torch.equal(grad, torch.zeros_like(z))


@pytest.mark.parametrize("case", sorted(LOSSES))
def test_a_normal_batch_warns_nothing(case):
    z, y = _z(), torch.tensor([0, 1, 2, 0, 1, 2])
    loss, caught = _call(case, z, y)
    assert caught == [], [str(w.message) for w in caught]
    assert bool(torch.isfinite(loss)) and float(loss.detach()) != 0.0


def test_once_per_loss_not_once_for_all_and_reset_rearms():
    y = torch.zeros(N, dtype=torch.long)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):  # a training loop: one warning per loss
            sup_con(_z(), y)
            triplet_margin(_z(), query_ids=y)
        reset_degenerate_warnings()
        sup_con(_z(), y)
    names = [str(w.message).split(":")[0] for w in _degenerate(caught)]
    assert names == ["sup_con", "triplet_margin", "sup_con"]


def test_the_warning_is_a_user_warning_that_a_filter_can_make_fatal():
    assert issubclass(DegenerateBatchWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateBatchWarning)
        with pytest.raises(DegenerateBatchWarning, match="sup_con"):
            sup_con(_z(), torch.zeros(N, dtype=torch.long))


def test_the_value_without_negatives_differs_from_the_plain_formula():
    # Without the check, SupCon on one class would be log(N−1) at a collapsed embedding and
    # train toward it; with the check it is 0 and teaches nothing.
    z = torch.ones(N, 5, dtype=F64)
    loss, caught = _call("sup_con", z, torch.zeros(N, dtype=torch.long))
    assert len(caught) == 1 and float(loss.detach()) == 0.0


def test_queue_negatives_are_negatives_unless_they_share_the_label():
    z, y = _z(), torch.zeros(N, dtype=torch.long)
    queue = torch.randn(4, 5, dtype=F64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = info_nce(z, query_ids=y, negatives=queue)  # the queue gives every row negatives
        other = info_nce(z, query_ids=y, negatives=queue, negative_ids=torch.tensor([0, 0, 1, 0]))
    assert _degenerate(caught) == [] and float(loss.detach()) > 0 and float(other.detach()) > 0
    with pytest.warns(DegenerateBatchWarning, match=NO_NEGATIVES):
        loss = info_nce(z, query_ids=y, negatives=queue, negative_ids=torch.zeros(4).long())
    assert float(loss.detach()) == 0.0


def test_symmetric_clip_with_one_pair_warns_and_with_n_pairs_does_not():
    img, txt = _z(), _z(1)
    one = torch.zeros(1, dtype=torch.long)
    with pytest.warns(DegenerateBatchWarning, match=f"info_nce: {NO_NEGATIVES}") as caught:
        loss = info_nce(img[:1], txt[:1], query_ids=one, key_ids=one, symmetric=True)
    assert len(_degenerate(caught)) == 1 and float(loss.detach()) == 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = torch.arange(N)  # paired data: one positive and N − 1 negatives per row
        loss = info_nce(img, txt, query_ids=ids, key_ids=ids, symmetric=True)
    assert _degenerate(caught) == [] and float(loss.detach()) > 0


def test_nt_xent_on_one_sample_has_no_negatives():
    v1, v2 = _z()[:1], _z(1)[:1]
    with pytest.warns(DegenerateBatchWarning, match=f"nt_xent: {NO_NEGATIVES}"):
        loss = nt_xent(v1, v2)
    (g1,) = torch.autograd.grad(loss, v1)
    assert float(loss.detach()) == 0.0 and torch.equal(g1, torch.zeros_like(g1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nt_xent(_z()[:2], _z(1)[:2])  # two samples: each view has two negatives
    assert _degenerate(caught) == []


def test_reduction_none_gives_zero_rows_without_negatives():
    with pytest.warns(DegenerateBatchWarning):
        rows = sup_con(_z(), torch.zeros(N, dtype=torch.long), reduction="none")
    assert rows.shape == (N,) and torch.equal(rows, torch.zeros(N, dtype=F64))


@pytest.mark.parametrize(
    "case", ["triplet_margin", "TripletMarginLoss+miner", "contrastive_margin"]
)
def test_margin_losses_check_the_labels_only_when_nothing_is_mined(case, monkeypatch):
    # The label check costs a host sync on CUDA; the margin losses run it only when their set
    # of triplets or pairs is empty (its size is known without a sync).
    import contrastkit._checks as checks

    calls = []
    original = checks.label_problems
    monkeypatch.setattr(checks, "label_problems", lambda *a: calls.append(1) or original(*a))
    LOSSES[case](_z(), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert calls == []
    with pytest.warns(DegenerateBatchWarning):
        LOSSES[case](_z(), torch.zeros(N, dtype=torch.long))
    assert calls == [1]
