"""DINO: self-distillation with no labels, a student matching a centred, sharpened teacher.

The teacher (a momentum copy of the student) sees the global views; its outputs, centred by a
running mean and sharpened by a low temperature, are the targets of the student's softmax on
every other view. Centring keeps one dimension from dominating, sharpening keeps the output
from collapsing to the uniform distribution.

Reference:
    Caron, Touvron, Misra, Jégou, Mairal, Bojanowski, Joulin 2021, "Emerging Properties in
    Self-Supervised Vision Transformers", ICCV.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed as dist
from contrastkit._checks import (
    check_embeddings,
    check_positive,
    check_probability,
    compute_dtype,
)
from contrastkit.losses._gather import resolve_gather
from contrastkit.losses.swav import _check_views

__all__ = ["DINOLoss", "dino", "update_center"]


def _check_center(center: Tensor, k: int, like: str) -> None:
    if not isinstance(center, Tensor):
        raise TypeError(
            f"center must be a torch.Tensor of shape (K,) or (1, K), got "
            f"{type(center).__name__}; start from torch.zeros(1, K)."
        )
    if center.dim() == 1:
        check_embeddings(center.unsqueeze(0), "center")
    else:
        check_embeddings(center, "center")
    if tuple(center.shape) not in ((k,), (1, k)):
        raise ValueError(
            f"center must have shape ({k},) or (1, {k}) to match the K={k} outputs of {like}, "
            f"got {tuple(center.shape)}; start from torch.zeros(1, K)."
        )


def dino(
    student: Sequence[Tensor],
    teacher: Sequence[Tensor],
    center: Tensor,
    *,
    student_temperature: float | Tensor = 0.1,
    teacher_temperature: float | Tensor = 0.04,
) -> Tensor:
    """DINO cross-entropy between the centred, sharpened teacher and the student, view pairs
    of distinct views::

        p_i = softmax((t_i − center) / τ_t)                       (stop-gradient)
        loss = (1/n) Σ_{i<T} Σ_{v<V, v≠i} (1/B) Σ_b −Σ_k p_i[b,k] · log softmax(s_v[b]/τ_s)_k

    with ``n`` the number of pairs (i, v), ``v ≠ i`` — the official ``DINOLoss``'s
    ``total_loss / n_loss_terms``.

    Args:
        student: list of V ≥ 2 student logits (B, K), every view, the global views first.
        teacher: list of 1 ≤ T ≤ V teacher logits (B, K), of the first T (global) views.
            Detached inside: the teacher gets no gradient (it follows the student by EMA).
        center: (K,) or (1, K), the running mean of the teacher logits
            (:func:`update_center`); zeros at the start.
        student_temperature: τ_s > 0 (0.1 in the paper).
        teacher_temperature: τ_t > 0 (0.04 in the paper, after a warm-up from 0.04 to 0.07).

    Returns:
        Scalar loss, float32 (float64 if any input is float64; half precision is upcast).

    Example:
        >>> import torch
        >>> from contrastkit.losses.dino import dino
        >>> student = [torch.randn(8, 32, requires_grad=True) for _ in range(4)]
        >>> teacher = [torch.randn(8, 32) for _ in range(2)]  # the 2 global views
        >>> loss = dino(student, teacher, torch.zeros(1, 32))
        >>> loss.backward()
    """
    student = _check_views(student, "student", min_views=2)
    shape = tuple(student[0].shape)
    teacher = _check_views(teacher, "teacher", min_views=1, shape=shape, like="student[0]")
    if len(teacher) > len(student):
        raise ValueError(
            f"teacher has {len(teacher)} views but student only {len(student)}; the teacher "
            f"sees the first len(teacher) (global) views, the student sees all of them."
        )
    _check_center(center, shape[1], "student[0]")
    if teacher[0].device != student[0].device or center.device != student[0].device:
        raise ValueError(
            f"student ({student[0].device}), teacher ({teacher[0].device}) and center "
            f"({center.device}) must be on one device."
        )
    check_positive(student_temperature, "student_temperature", "DINO uses τ_s = 0.1.")
    check_positive(teacher_temperature, "teacher_temperature", "DINO uses τ_t = 0.04–0.07.")
    dtype = compute_dtype(*student, *teacher, center)

    def temp(t: float | Tensor) -> float | Tensor:
        return t.to(dtype) if isinstance(t, Tensor) else float(t)

    # a tensor τ_s may be learnable; the teacher side is all stop-gradient
    tau_s, tau_t = temp(student_temperature), temp(teacher_temperature)
    if isinstance(tau_t, Tensor):
        tau_t = tau_t.detach()
    c = center.detach().to(dtype).reshape(1, -1)
    targets = [F.softmax((t.detach().to(dtype) - c) / tau_t, dim=1) for t in teacher]
    log_p = [F.log_softmax(s.to(dtype) / tau_s, dim=1) for s in student]
    total = student[0].new_zeros((), dtype=dtype)
    n_terms = 0
    for i, p in enumerate(targets):
        for v, lp in enumerate(log_p):
            if v == i:
                continue
            total = total - (p * lp).sum(dim=1).mean()
            n_terms += 1
    return total / n_terms


def update_center(
    center: Tensor,
    teacher: Sequence[Tensor],
    *,
    momentum: float = 0.9,
    gather: str | None = None,
) -> Tensor:
    """The DINO center's EMA update, without gradient::

        center ← momentum · center + (1 − momentum) · mean of every row of every teacher view

    Args:
        center: (K,) or (1, K), the current center.
        teacher: list of (B, K) teacher logits (one per global view).
        momentum: in [0, 1] (0.9 in the paper); 0 gives the batch mean, 1 keeps the center.
        gather: ``"instances"`` (or ``"labels"``: the rows carry no ids, so the two kinds are
            one here): under torch.distributed, the mean runs over every process's rows (the
            official all-reduce), so every process keeps the same center. No effect outside a
            group. ``True`` is deprecated for ``"instances"``.

    Returns:
        The new center, shape of ``center``, float32 (float64 if any input is float64),
        detached. Assign it (``center.copy_(new)``): the input is not modified.

    Example:
        >>> import torch
        >>> from contrastkit.losses.dino import update_center
        >>> center = torch.zeros(1, 4)
        >>> teacher = [torch.ones(8, 4), 3 * torch.ones(8, 4)]
        >>> update_center(center, teacher, momentum=0.5)
        tensor([[1., 1., 1., 1.]])
    """
    teacher = _check_views(teacher, "teacher", min_views=1)
    _check_center(center, teacher[0].shape[1], "teacher[0]")
    check_probability(momentum, "momentum", upper_open=False)
    gather = resolve_gather(gather, "update_center")
    dtype = compute_dtype(center, *teacher)
    with torch.no_grad():
        rows = torch.cat([t.detach() for t in teacher]).to(dtype)
        total = rows.sum(dim=0)
        count = rows.new_tensor(float(rows.shape[0]))
        if gather is not None and dist.is_distributed():
            both = dist.all_reduce_sum(torch.cat([total, count.reshape(1)]))
            total, count = both[:-1], both[-1]
        batch_mean = (total / count).to(center.device)
        m = float(momentum)
        new = center.detach().to(dtype) * m + batch_mean.reshape(center.shape) * (1.0 - m)
        return new


class DINOLoss(nn.Module):
    """DINO loss with its center (a registered buffer, so checkpointed) and the teacher-
    temperature warm-up.

    ``forward(student, teacher, epoch=None)`` returns :func:`dino` with the current center, then
    (in training mode) updates the center in place with :func:`update_center` — the official
    order. The teacher temperature rises linearly from ``warmup_teacher_temperature`` at epoch 0
    to ``teacher_temperature`` at epoch ``warmup_epochs − 1`` (``numpy.linspace``, as the
    official schedule; fractional epochs interpolate), then stays constant. ``epoch`` is
    required while a warm-up is configured.

    Args:
        out_dim: K, the number of outputs of the DINO head.
        student_temperature: τ_s (0.1).
        teacher_temperature: τ_t after the warm-up (0.04; the paper goes up to 0.07).
        warmup_teacher_temperature: τ_t at epoch 0 (0.04).
        warmup_epochs: length of the warm-up in epochs (0: none; 30 in the paper).
        center_momentum: momentum of the center EMA (0.9).
        gather: ``"instances"``: average the center over the global batch under
            torch.distributed (:func:`update_center`'s ``gather``).

    Example:
        >>> import torch
        >>> from contrastkit.losses.dino import DINOLoss
        >>> loss_fn = DINOLoss(32, warmup_teacher_temperature=0.04, teacher_temperature=0.07,
        ...                    warmup_epochs=10)
        >>> student = [torch.randn(8, 32, requires_grad=True) for _ in range(4)]
        >>> teacher = [torch.randn(8, 32) for _ in range(2)]
        >>> loss = loss_fn(student, teacher, epoch=0)
        >>> loss.backward()
        >>> round(loss_fn.teacher_temperature_at(9), 6), loss_fn.center.shape
        (0.07, torch.Size([1, 32]))
    """

    center: Tensor

    def __init__(
        self,
        out_dim: int,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        warmup_teacher_temperature: float = 0.04,
        warmup_epochs: int = 0,
        center_momentum: float = 0.9,
        *,
        gather: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 1:
            raise ValueError(
                f"out_dim must be an integer ≥ 1, the number of outputs K of the DINO head, "
                f"got {out_dim!r}."
            )
        check_positive(student_temperature, "student_temperature", "DINO uses τ_s = 0.1.")
        check_positive(teacher_temperature, "teacher_temperature", "DINO uses τ_t = 0.04–0.07.")
        check_positive(warmup_teacher_temperature, "warmup_teacher_temperature", "DINO uses 0.04.")
        if (
            isinstance(warmup_epochs, bool)
            or not isinstance(warmup_epochs, int)
            or warmup_epochs < 0
        ):
            raise ValueError(
                f"warmup_epochs must be an integer ≥ 0, got {warmup_epochs!r}; use 0 for no "
                f"teacher-temperature warm-up."
            )
        check_probability(center_momentum, "center_momentum", upper_open=False)
        self.out_dim = out_dim
        self.student_temperature = float(student_temperature)
        self.teacher_temperature = float(teacher_temperature)
        self.warmup_teacher_temperature = float(warmup_teacher_temperature)
        self.warmup_epochs = warmup_epochs
        self.center_momentum = float(center_momentum)
        self.gather = resolve_gather(gather, "update_center")
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_temperature_at(self, epoch: float | None) -> float:
        """τ_t at ``epoch`` (0-based): the linear warm-up, then ``teacher_temperature``."""
        if epoch is None:
            if self.warmup_epochs > 0:
                raise ValueError(
                    f"epoch is required with warmup_epochs={self.warmup_epochs}: pass the "
                    f"current (0-based) epoch, e.g. loss_fn(student, teacher, epoch=epoch)."
                )
            return self.teacher_temperature
        e = float(epoch)
        if not e >= 0:
            raise ValueError(f"epoch must be a number ≥ 0 (0-based), got {epoch!r}.")
        if e >= self.warmup_epochs:
            return self.teacher_temperature
        if self.warmup_epochs == 1:
            return self.warmup_teacher_temperature
        frac = min(e / (self.warmup_epochs - 1), 1.0)
        start, end = self.warmup_teacher_temperature, self.teacher_temperature
        return start + (end - start) * frac

    def forward(
        self,
        student: Sequence[Tensor],
        teacher: Sequence[Tensor],
        epoch: float | None = None,
    ) -> Tensor:
        loss = dino(
            student,
            teacher,
            self.center,
            student_temperature=self.student_temperature,
            teacher_temperature=self.teacher_temperature_at(epoch),
        )
        if self.training:
            with torch.no_grad():
                new = update_center(
                    self.center, teacher, momentum=self.center_momentum, gather=self.gather
                )
                self.center.copy_(new)
        return loss

    def extra_repr(self) -> str:
        return (
            f"out_dim={self.out_dim}, student_temperature={self.student_temperature}, "
            f"teacher_temperature={self.teacher_temperature}, "
            f"warmup_teacher_temperature={self.warmup_teacher_temperature}, "
            f"warmup_epochs={self.warmup_epochs}, center_momentum={self.center_momentum}"
        )
