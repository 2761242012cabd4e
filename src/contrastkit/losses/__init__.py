"""Contrastive, metric-learning and negative-free self-supervised losses.

Pure functions live in :mod:`contrastkit.losses.functional`; this module exports them together
with their ``nn.Module`` forms. Positives are always given by integer ids (rows with equal ids
are positives), so one implementation serves SimCLR, SupCon, CLIP, SimCSE and queues.
"""

from contrastkit._checks import DegenerateBatchWarning, reset_degenerate_warnings
from contrastkit.losses.barlow_twins import BarlowTwinsLoss, barlow_twins
from contrastkit.losses.bpr import BPRLoss, bpr
from contrastkit.losses.contrastive_margin import ContrastiveMarginLoss, contrastive_margin
from contrastkit.losses.debiased_info_nce import DebiasedInfoNCELoss, debiased_info_nce
from contrastkit.losses.dino import DINOLoss, dino, update_center
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
from contrastkit.losses.local_global import LocalGlobalJSDLoss, local_global_jsd
from contrastkit.losses.n_pair import NPairLoss, n_pair
from contrastkit.losses.negative_cosine import NegativeCosineLoss, negative_cosine
from contrastkit.losses.sampled_softmax import SampledSoftmaxLoss, sampled_softmax
from contrastkit.losses.sigmoid_pairwise import SigmoidPairwiseLoss, sigmoid_pairwise
from contrastkit.losses.swav import SwAVLoss, sinkhorn_knopp, swav
from contrastkit.losses.triplet_margin import TripletMarginLoss, triplet_margin
from contrastkit.losses.vicreg import VICRegLoss, vicreg, vicreg_terms

__all__ = [
    "BPRLoss",
    "BarlowTwinsLoss",
    "ContrastiveMarginLoss",
    "DINOLoss",
    "DebiasedInfoNCELoss",
    "DegenerateBatchWarning",
    "HardNegativeInfoNCELoss",
    "InfoNCELoss",
    "LocalGlobalJSDLoss",
    "NPairLoss",
    "NTXentLoss",
    "NegativeCosineLoss",
    "SampledSoftmaxLoss",
    "SigmoidPairwiseLoss",
    "SupConLoss",
    "SwAVLoss",
    "TripletMarginLoss",
    "VICRegLoss",
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
    "reset_degenerate_warnings",
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
