"""dino and update_center against explicit loops, closed forms, gradcheck and the module."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses.dino import DINOLoss, dino, update_center

TOL = 1e-10
F64 = torch.float64


# ----------------------------------------------------------------------------- reference


def _softmax(row, tau):
    x = [v / tau for v in row]
    m = max(x)
    e = [math.exp(v - m) for v in x]
    s = sum(e)
    return [v / s for v in e]


def _log_softmax(row, tau):
    x = [v / tau for v in row]
    m = max(x)
    lse = m + math.log(sum(math.exp(v - m) for v in x))
    return [v - lse for v in x]


def ref_dino(student, teacher, center, t_s, t_t):
    """Σ_{i, v≠i} (1/B) Σ_b −Σ_k softmax((t_i − c)/τ_t) · log softmax(s_v/τ_s), / n_terms."""
    S = [s.tolist() for s in student]
    T = [t.tolist() for t in teacher]
    c = center.reshape(-1).tolist()
    total, n_terms = 0.0, 0
    for i, t in enumerate(T):
        for v, s in enumerate(S):
            if v == i:
                continue
            ce = 0.0
            for b in range(len(t)):
                p = _softmax([x - ck for x, ck in zip(t[b], c)], t_t)
                lp = _log_softmax(s[b], t_s)
                ce -= sum(pk * lk for pk, lk in zip(p, lp))
            total += ce / len(t)
            n_terms += 1
    return total / n_terms


def ref_update_center(center, teacher, momentum):
    rows = [row for t in teacher for row in t.tolist()]
    k = len(rows[0])
    mean = [sum(r[j] for r in rows) / len(rows) for j in range(k)]
    return [momentum * c + (1 - momentum) * m for c, m in zip(center.reshape(-1).tolist(), mean)]


def _logits(seed=0, n_views=4, n_teacher=2, b=5, k=6, scale=1.0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    student = [torch.randn(b, k, generator=g, dtype=dtype) * scale for _ in range(n_views)]
    teacher = [torch.randn(b, k, generator=g, dtype=dtype) * scale for _ in range(n_teacher)]
    center = torch.randn(1, k, generator=g, dtype=dtype) * 0.3
    return student, teacher, center


# ----------------------------------------------------------------------------- reference tests


@pytest.mark.parametrize(("t_s", "t_t"), [(0.1, 0.04), (0.1, 0.07), (0.5, 0.2), (1.0, 1.0)])
@pytest.mark.parametrize(("n_views", "n_teacher"), [(2, 2), (2, 1), (4, 2), (5, 3), (3, 1)])
def test_dino_matches_reference(n_views, n_teacher, t_s, t_t):
    student, teacher, center = _logits(1, n_views, n_teacher)
    got = dino(student, teacher, center, student_temperature=t_s, teacher_temperature=t_t)
    assert got.dtype == F64 and got.dim() == 0
    want = ref_dino(student, teacher, center, t_s, t_t)
    assert abs(float(got) - want) < TOL, (float(got), want)


def test_dino_center_shapes_and_tensor_temperatures():
    student, teacher, center = _logits(2)
    want = ref_dino(student, teacher, center, 0.2, 0.05)
    for c in (center, center.reshape(-1)):
        got = dino(
            student,
            teacher,
            c,
            student_temperature=torch.tensor(0.2, dtype=F64),
            teacher_temperature=torch.tensor(0.05, dtype=F64),
        )
        assert abs(float(got) - want) < TOL


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9, 0.996, 1.0])
def test_update_center_matches_reference(momentum):
    _, teacher, center = _logits(3, n_teacher=3)
    got = update_center(center, teacher, momentum=momentum)
    assert got.shape == center.shape and got.dtype == F64 and not got.requires_grad
    want = ref_update_center(center, teacher, momentum)
    for g, w in zip(got.reshape(-1).tolist(), want):
        assert abs(g - w) < TOL
    flat = update_center(center.reshape(-1), teacher, momentum=momentum)
    assert flat.shape == (center.shape[1],)
    torch.testing.assert_close(flat, got.reshape(-1), atol=0, rtol=0)


# ----------------------------------------------------------------------------- analytic cases


@pytest.mark.parametrize("k", [2, 7])
def test_uniform_teacher_and_constant_student_give_log_k(k):
    student = [torch.full((3, k), c, dtype=F64) for c in (0.5, -1.0, 2.0)]
    teacher = [torch.full((3, k), c, dtype=F64) for c in (1.0, 3.0)]  # softmax: uniform
    got = dino(student, teacher, torch.zeros(k, dtype=F64))
    assert abs(float(got) - math.log(k)) < 1e-12
    # a constant student gives log K whatever the teacher
    _, rand_teacher, center = _logits(4, k=k, b=3)
    got = dino(student, rand_teacher, center)
    assert abs(float(got) - math.log(k)) < 1e-12


def test_sharp_teacher_equal_to_the_student_argmax_gives_zero():
    k = 5
    winners = torch.tensor([0, 3, 1, 4])
    one_hot = torch.nn.functional.one_hot(winners, k).to(F64)
    student = [one_hot * 10.0 for _ in range(4)]  # /0.1: margins of 100
    teacher = [one_hot * 10.0 for _ in range(2)]  # /0.04: a one-hot target
    got = dino(student, teacher, torch.zeros(1, k, dtype=F64))
    assert 0.0 <= float(got) < 1e-12


def test_update_center_momentum_extremes():
    _, teacher, center = _logits(5)
    mean = torch.cat(teacher).mean(dim=0, keepdim=True)
    torch.testing.assert_close(update_center(center, teacher, momentum=0.0), mean)
    torch.testing.assert_close(update_center(center, teacher, momentum=1.0), center)
    # the input is not modified
    before = center.clone()
    update_center(center, teacher, momentum=0.5)
    assert torch.equal(center, before)
    # gather outside a process group is a no-op
    assert torch.equal(
        update_center(center, teacher, gather="instances"), update_center(center, teacher)
    )


# ----------------------------------------------------------------------------- gradients


def test_gradcheck_wrt_student():
    student, teacher, center = _logits(6, n_views=3, n_teacher=2, b=3, k=4)
    student = [s.requires_grad_(True) for s in student]
    assert torch.autograd.gradcheck(
        lambda *s: dino(list(s), teacher, center, student_temperature=0.3), student
    )
    t_s = torch.tensor(0.3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s0, s1, s2, tt: dino([s0, s1, s2], teacher, center, student_temperature=tt),
        (*student, t_s),
    )


def test_teacher_and_center_get_no_gradient():
    student, teacher, center = _logits(7)
    student = [s.requires_grad_(True) for s in student]
    teacher = [t.requires_grad_(True) for t in teacher]
    center.requires_grad_(True)
    loss = dino(student, teacher, center)
    grads = torch.autograd.grad(loss, [*student, *teacher, center], allow_unused=True)
    assert all(g is not None for g in grads[: len(student)])
    assert all(g is None for g in grads[len(student) :])
    loss = dino(student, teacher, center)
    loss.backward()
    assert all(t.grad is None for t in teacher) and center.grad is None


# ----------------------------------------------------------------------------- module


def test_module_equals_function_and_updates_the_center_in_train_mode():
    student, teacher, _ = _logits(8)
    mod = DINOLoss(6, student_temperature=0.2, teacher_temperature=0.05, center_momentum=0.8)
    mod.double()
    assert "center" in mod.state_dict() and list(mod.parameters()) == []
    assert mod.center.shape == (1, 6) and bool((mod.center == 0).all())
    old = mod.center.clone()
    got = mod(student, teacher)
    want = dino(student, teacher, old, student_temperature=0.2, teacher_temperature=0.05)
    torch.testing.assert_close(got, want, atol=0, rtol=0)  # the loss uses the old center
    assert abs(float(got) - ref_dino(student, teacher, old, 0.2, 0.05)) < TOL
    new = ref_update_center(old, teacher, 0.8)
    for g, w in zip(mod.center.reshape(-1).tolist(), new):
        assert abs(g - w) < TOL
    torch.testing.assert_close(mod.state_dict()["center"], mod.center, atol=0, rtol=0)

    # eval mode: the loss uses the center, which stays
    mod.eval()
    frozen = mod.center.clone()
    got = mod(student, teacher)
    assert torch.equal(mod.center, frozen)
    assert abs(float(got) - ref_dino(student, teacher, frozen, 0.2, 0.05)) < TOL

    # checkpointed: a fresh module restores the center
    fresh = DINOLoss(6).double()
    fresh.load_state_dict(mod.state_dict())
    assert torch.equal(fresh.center, mod.center)


def test_module_student_gets_gradient_and_center_has_none():
    student, teacher, _ = _logits(9)
    student = [s.requires_grad_(True) for s in student]
    mod = DINOLoss(6)
    loss = mod(student, teacher)
    loss.backward()
    assert all(s.grad is not None for s in student)
    assert not mod.center.requires_grad and mod.center.dtype == torch.float32


def test_teacher_temperature_warmup():
    mod = DINOLoss(4, warmup_teacher_temperature=0.04, teacher_temperature=0.07, warmup_epochs=4)
    # numpy.linspace(0.04, 0.07, 4) then constant, as in the official schedule
    want = [0.04, 0.05, 0.06, 0.07, 0.07, 0.07]
    for epoch, w in enumerate(want):
        assert abs(mod.teacher_temperature_at(epoch) - w) < 1e-15
    assert abs(mod.teacher_temperature_at(1.5) - 0.055) < 1e-15
    with pytest.raises(ValueError, match="epoch is required with warmup_epochs=4"):
        mod.teacher_temperature_at(None)
    with pytest.raises(ValueError, match="epoch must be a number ≥ 0"):
        mod.teacher_temperature_at(-1)
    one = DINOLoss(4, warmup_teacher_temperature=0.04, teacher_temperature=0.07, warmup_epochs=1)
    assert one.teacher_temperature_at(0) == 0.04 and one.teacher_temperature_at(1) == 0.07
    none = DINOLoss(4, teacher_temperature=0.07)
    assert none.teacher_temperature_at(None) == 0.07 and none.teacher_temperature_at(0) == 0.07

    # forward uses the scheduled temperature
    student, teacher, _ = _logits(10, k=4)
    mod.double().eval()
    for epoch in (0, 2, 10):
        got = mod(student, teacher, epoch=epoch)
        t_t = mod.teacher_temperature_at(epoch)
        assert abs(float(got) - ref_dino(student, teacher, mod.center, 0.1, t_t)) < TOL


def test_bf16_inputs_give_float32_close_to_float64():
    student, teacher, center = _logits(11, scale=0.3)
    sb = [s.to(torch.bfloat16) for s in student]
    tb = [t.to(torch.bfloat16) for t in teacher]
    for t_s, t_t in ((0.1, 0.04), (0.5, 0.1)):
        kw = dict(student_temperature=t_s, teacher_temperature=t_t)
        got = dino(sb, tb, center.float(), **kw)
        want = dino([s.double() for s in sb], [t.double() for t in tb], center, **kw)
        assert got.dtype == torch.float32
        assert abs(float(got) - float(want)) < 1e-2
    mod = DINOLoss(6)
    assert mod(sb, tb).dtype == torch.float32 and mod.center.dtype == torch.float32
    new = update_center(center.float(), tb)
    assert new.dtype == torch.float32
    want_c = update_center(center, [t.double() for t in tb])
    assert float((new.double() - want_c).abs().max()) < 1e-2


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clearly():
    student, teacher, center = _logits(12)
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="student_temperature must be a finite number > 0"):
            dino(student, teacher, center, student_temperature=bad)
        with pytest.raises(ValueError, match="teacher_temperature must be a finite number > 0"):
            dino(student, teacher, center, teacher_temperature=bad)
        with pytest.raises(ValueError, match="student_temperature must be a finite number > 0"):
            DINOLoss(6, student_temperature=bad)
        with pytest.raises(ValueError, match="teacher_temperature must be a finite number > 0"):
            DINOLoss(6, teacher_temperature=bad)
        with pytest.raises(ValueError, match="warmup_teacher_temperature must be a finite"):
            DINOLoss(6, warmup_teacher_temperature=bad)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\]"):
            update_center(center, teacher, momentum=bad)
        with pytest.raises(ValueError, match=r"center_momentum must lie in \[0, 1\]"):
            DINOLoss(6, center_momentum=bad)
    with pytest.raises(ValueError, match="out_dim must be an integer ≥ 1"):
        DINOLoss(0)
    with pytest.raises(ValueError, match="warmup_epochs must be an integer ≥ 0"):
        DINOLoss(6, warmup_epochs=-1)
    with pytest.raises(ValueError, match=r"student must hold at least 2 view\(s\), got 1"):
        dino(student[:1], teacher[:1], center)
    with pytest.raises(ValueError, match=r"teacher must hold at least 1 view\(s\), got 0"):
        dino(student, [], center)
    with pytest.raises(ValueError, match="teacher has 3 views but student only 2"):
        dino(student[:2], [*teacher, teacher[0]], center)
    with pytest.raises(ValueError, match=r"student\[1\] has shape \(4, 6\) but student\[0\]"):
        dino([student[0], student[1][:4]], teacher, center)
    with pytest.raises(ValueError, match=r"teacher\[0\] has shape \(5, 3\) but student\[0\]"):
        dino(student, [teacher[0][:, :3]], center)
    with pytest.raises(ValueError, match=r"center must have shape \(6,\) or \(1, 6\)"):
        dino(student, teacher, center[:, :5])
    with pytest.raises(ValueError, match=r"center must have shape \(6,\) or \(1, 6\)"):
        dino(student, teacher, center.repeat(2, 1))
    with pytest.raises(ValueError, match=r"center must have shape \(6,\) or \(1, 6\)"):
        update_center(center[:, :5], teacher)
    with pytest.raises(ValueError, match=r"center must have shape \(6,\) or \(1, 6\)"):
        DINOLoss(5)(student, teacher)
    with pytest.raises(TypeError, match="student must be a list of"):
        dino(torch.stack(student), teacher, center)
    with pytest.raises(TypeError, match="teacher must be a list of"):
        update_center(center, teacher[0])
    bad = teacher[1].clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"teacher\[1\] contains non-finite values \(1 NaN"):
        dino(student, [teacher[0], bad], center)
    with pytest.raises(ValueError, match=r"teacher\[1\] contains non-finite values"):
        update_center(center, [teacher[0], bad])
    bad_c = center.clone()
    bad_c[0, 2] = float("inf")
    with pytest.raises(ValueError, match=r"center contains non-finite values \(0 NaN, 1 inf\)"):
        dino(student, teacher, bad_c)
    with pytest.raises(ValueError, match="epoch is required"):
        DINOLoss(6, warmup_epochs=3)(student, teacher)
