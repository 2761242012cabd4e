"""Pure-function losses: ``from contrastkit.losses.functional import info_nce``.

Every loss here is a function of embedding tensors and integer ids; the ``nn.Module`` twins in
:mod:`contrastkit.losses` only hold hyper-parameters (and learnable temperatures).
"""

from contrastkit.losses.barlow_twins import barlow_twins
from contrastkit.losses.bpr import bpr
from contrastkit.losses.contrastive_margin import contrastive_margin
from contrastkit.losses.debiased_info_nce import debiased_info_nce
from contrastkit.losses.dino import dino, update_center
from contrastkit.losses.hard_negative_info_nce import hard_negative_info_nce
from contrastkit.losses.info_nce import info_nce, nt_xent, sup_con
from contrastkit.losses.local_global import local_global_jsd
from contrastkit.losses.n_pair import n_pair
from contrastkit.losses.negative_cosine import negative_cosine
from contrastkit.losses.sampled_softmax import sampled_softmax
from contrastkit.losses.sigmoid_pairwise import sigmoid_pairwise
from contrastkit.losses.swav import sinkhorn_knopp, swav
from contrastkit.losses.triplet_margin import triplet_margin
from contrastkit.losses.vicreg import vicreg, vicreg_terms

__all__ = [
    "barlow_twins",
    "bpr",
    "contrastive_margin",
    "debiased_info_nce",
    "dino",
    "hard_negative_info_nce",
    "info_nce",
    "local_global_jsd",
    "n_pair",
    "negative_cosine",
    "nt_xent",
    "sampled_softmax",
    "sigmoid_pairwise",
    "sinkhorn_knopp",
    "sup_con",
    "swav",
    "triplet_margin",
    "update_center",
    "vicreg",
    "vicreg_terms",
]
