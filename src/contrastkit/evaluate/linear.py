"""Linear probe: a multinomial logistic regression on frozen features.

Features are standardised with the training split's statistics; the L2 penalty is chosen on a
validation split carved from the training data (never the test split), then the classifier is
refit on all training features. Optimised full-batch with L-BFGS in float32 (or float64).

Example:
    >>> import torch
    >>> from contrastkit.evaluate import linear_probe
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(200, 5, generator=g); y = (x[:, 0] > 0).long()
    >>> result = linear_probe(x[:150], y[:150], x[150:], y[150:])
    >>> result["accuracy"] > 0.9
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fit_logistic", "linear_probe"]


def fit_logistic(
    x: Tensor, y: Tensor, num_classes: int, weight_decay: float, max_iter: int = 200
) -> tuple[Tensor, Tensor]:
    """Minimise mean cross-entropy + ``weight_decay``·|W|² with L-BFGS; return (W, b)."""
    w = torch.zeros(x.shape[1], num_classes, dtype=x.dtype, requires_grad=True)
    b = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    weight_decays: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2),
    val_fraction: float = 0.1,
    seed: int = 0,
    max_iter: int = 200,
) -> dict:
    """Fit on train (penalty chosen on a held-out part of train), report on test.

    Returns:
        ``{"accuracy", "weight_decay", "val_accuracy", "predictions" (Q,), "probabilities"
        (Q, C)}``.
    """
    x_tr, x_te = train_features.float(), test_features.float()
    y_tr, y_te = train_labels.long(), test_labels.long()
    c = int(max(int(y_tr.max()), int(y_te.max())) + 1)
    mean, std = x_tr.mean(0, keepdim=True), x_tr.std(0, keepdim=True).clamp_min(1e-6)
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x_tr.shape[0], generator=g)
    n_val = max(1, int(val_fraction * x_tr.shape[0]))
    val, fit = perm[:n_val], perm[n_val:]
    best = (-1.0, weight_decays[0])
    for wd in weight_decays:
        w, b = fit_logistic(x_tr[fit], y_tr[fit], c, wd, max_iter)
        acc = float(((x_tr[val] @ w + b).argmax(1) == y_tr[val]).float().mean())
        if acc > best[0]:
            best = (acc, wd)
    w, b = fit_logistic(x_tr, y_tr, c, best[1], max_iter)
    logits = x_te @ w + b
    pred = logits.argmax(1)
    return {
        "accuracy": float((pred == y_te).float().mean()),
        "weight_decay": best[1],
        "val_accuracy": best[0],
        "predictions": pred,
        "probabilities": logits.softmax(1),
    }
