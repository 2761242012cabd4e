"""Contrastive and metric-learning losses.

Pure functions live in :mod:`contrastkit.losses.functional`; this module exports them together
with their ``nn.Module`` forms. Positives are always given by integer ids (rows with equal ids
are positives), so one implementation serves SimCLR, SupCon, CLIP, SimCSE and queues.
"""

from contrastkit.losses.contrastive_margin import ContrastiveMarginLoss, contrastive_margin
from contrastkit.losses.debiased_info_nce import DebiasedInfoNCELoss, debiased_info_nce
from contrastkit.losses.hard_negative_info_nce import (
    HardNegativeInfoNCELoss,
    hard_negative_info_nce,
)
from contrastkit.losses.info_nce import (
    InfoNCELoss,
    NTXentLoss,
    SupConLoss,
    info_nce,
    nt_xent,
    sup_con,
)
from contrastkit.losses.n_pair import NPairLoss, n_pair
from contrastkit.losses.sigmoid_pairwise import SigmoidPairwiseLoss, sigmoid_pairwise
from contrastkit.losses.triplet_margin import TripletMarginLoss, triplet_margin

__all__ = [
    "ContrastiveMarginLoss",
    "DebiasedInfoNCELoss",
    "HardNegativeInfoNCELoss",
    "InfoNCELoss",
    "NPairLoss",
    "NTXentLoss",
    "SigmoidPairwiseLoss",
    "SupConLoss",
    "TripletMarginLoss",
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
