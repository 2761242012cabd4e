"""State decoding: how much of the true state a frozen observation encoder's features hold.

A linear classifier per state variable (an agent's grid cell, its heading, whether it carries
a key, ...) is fitted on the features of training observations and scored on observations
from other episodes (Anand et al. 2019, "Unsupervised State Representation Learning in
Atari": linear probes of game-state variables). The baseline beside each accuracy is the
majority class of the probe's training labels; a random encoder of the same architecture is
the other baseline, measured by the caller with the same function.

Example:
    >>> import torch
    >>> from contrastkit.evaluate.state_probe import state_decoding_probe
    >>> g = torch.Generator().manual_seed(0)
    >>> f = torch.randn(200, 8, generator=g)
    >>> states = {"sign": (f[:, 0] > 0).long()}
    >>> r = state_decoding_probe(f[:150], {k: v[:150] for k, v in states.items()},
    ...                          f[150:], {k: v[150:] for k, v in states.items()})
    >>> r["sign"]["accuracy"] > 0.9, sorted(r["sign"])
    (True, ['accuracy', 'chance', 'classes', 'weight_decay'])
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.evaluate.linear import linear_probe

__all__ = ["state_decoding_probe"]


def state_decoding_probe(
    train_features: Tensor,
    train_states: dict[str, Tensor],
    test_features: Tensor,
    test_states: dict[str, Tensor],
    *,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """A linear probe per state variable: fitted on train (its penalty chosen on a held-out
    tenth of train), accuracy on test.

    Args:
        train_features, test_features: (N, D) and (M, D) frozen features.
        train_states, test_states: variable name → (N,) / (M,) integer classes (e.g. ``cell``
            = y·width + x, ``direction`` 0–3).
        seed: the held-out split of train.

    Returns:
        name → ``{"accuracy", "chance" (the training majority class's share of test),
        "classes", "weight_decay"}``.
    """
    if set(train_states) != set(test_states):
        raise ValueError(
            f"train and test name different state variables: {sorted(train_states)} vs "
            f"{sorted(test_states)}."
        )
    if train_features.shape[0] < 2 or test_features.shape[0] < 1:
        raise ValueError("the state probe needs at least 2 training and 1 test observation.")
    out: dict[str, dict[str, float]] = {}
    for name in train_states:
        y_tr = torch.as_tensor(train_states[name]).long()
        y_te = torch.as_tensor(test_states[name]).long()
        if y_tr.shape[0] != train_features.shape[0] or y_te.shape[0] != test_features.shape[0]:
            raise ValueError(f"state {name!r} has a different number of rows than the features.")
        if y_tr.min() < 0 or y_te.min() < 0:
            raise ValueError(f"state {name!r} must be non-negative class numbers.")
        majority = int(torch.bincount(y_tr).argmax())
        chance = float((y_te == majority).float().mean())
        if torch.unique(y_tr).numel() < 2:
            acc, wd = chance, 0.0
        else:
            r = linear_probe(train_features, y_tr, test_features, y_te, seed=seed)
            acc, wd = r["accuracy"], r["weight_decay"]
        out[name] = {
            "accuracy": float(acc),
            "chance": chance,
            "classes": int(torch.unique(torch.cat([y_tr, y_te])).numel()),
            "weight_decay": float(wd),
        }
    return out
