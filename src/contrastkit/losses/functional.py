"""Pure-function losses: ``from contrastkit.losses.functional import info_nce``.

Every loss here is a function of embedding tensors and integer ids; the ``nn.Module`` twins in
:mod:`contrastkit.losses` only hold hyper-parameters (and learnable temperatures).
"""

from contrastkit.losses.contrastive_margin import contrastive_margin
from contrastkit.losses.debiased_info_nce import debiased_info_nce
from contrastkit.losses.hard_negative_info_nce import hard_negative_info_nce
from contrastkit.losses.info_nce import info_nce, nt_xent, sup_con
from contrastkit.losses.n_pair import n_pair
from contrastkit.losses.sigmoid_pairwise import sigmoid_pairwise
from contrastkit.losses.triplet_margin import triplet_margin

__all__ = [
    "contrastive_margin",
    "debiased_info_nce",
    "hard_negative_info_nce",
    "info_nce",
    "n_pair",
    "nt_xent",
    "sigmoid_pairwise",
    "sup_con",
    "triplet_margin",
]
