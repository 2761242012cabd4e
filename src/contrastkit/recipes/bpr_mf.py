"""BPR-MF (Rendle et al. 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback"):
matrix factorisation trained with BPR, i.e. LightGCN with 0 layers (the score of a user and an
item is the inner product of their own embeddings).

Example:
    >>> import torch
    >>> from contrastkit.recipes.bpr_mf import BPRMF
    >>> pairs = torch.tensor([[0, 0], [0, 1], [1, 1], [2, 2]])
    >>> recipe = BPRMF(3, 3, train_pairs=pairs)
    >>> recipe.encoder.layers, recipe.step({"users": pairs[:, 0], "items": pairs[:, 1]}).loss.ndim
    (0, 0)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from contrastkit.recipes.lightgcn import LightGCNRecipe

__all__ = ["BPRMF", "BPRMFConfig"]


@dataclass
class BPRMFConfig:
    """BPR-MF hyper-parameters.

    Attributes:
        dim: embedding width (64, as the graph models it is compared with).
        reg: L2 weight on the step's user and item embeddings (1e-4, as LightGCN's code).
        init: ``"normal"`` (std 0.1) or ``"xavier"``.
    """

    dim: int = 64
    reg: float = 1e-4
    init: str = "normal"


class BPRMF(LightGCNRecipe):
    """User and item embedding tables + uniform negatives + BPR (``name = "bpr_mf"``)."""

    name = "bpr_mf"
    config_class = BPRMFConfig

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: BPRMFConfig | None = None,
        *,
        train_pairs: Tensor,
    ) -> None:
        super().__init__(n_users, n_items, config, train_pairs=train_pairs, layers=0)
