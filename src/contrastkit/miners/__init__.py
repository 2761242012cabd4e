"""Miners: choose informative pairs and triplets from a batch (indices, no gradient).

Every miner is a pure function and an ``nn.Module`` with the losses' calling convention,
``miner(query, key=None, *, query_ids, key_ids=None)``, and returns :class:`Triplets` that
:func:`~contrastkit.losses.functional.triplet_margin` and
:func:`~contrastkit.losses.functional.contrastive_margin` accept.

A batch whose labels allow no triplet (one class: no negatives; every label unique: no
positives) gives empty triplets and a :class:`DegenerateBatchWarning`, once per miner and
process (:func:`reset_degenerate_warnings` re-arms it). Valid labels whose triplets are all easy
give empty triplets without a warning: a zero loss is then the right answer.
"""

from contrastkit._checks import DegenerateBatchWarning, reset_degenerate_warnings
from contrastkit.miners._base import Miner
from contrastkit.miners.batch_all import BatchAllMiner, batch_all_triplets
from contrastkit.miners.batch_hard import BatchHardMiner, batch_hard_triplets
from contrastkit.miners.distance_weighted import (
    DistanceWeightedMiner,
    distance_weighted_triplets,
    distance_weights,
)
from contrastkit.miners.offline import mine_hard_negatives
from contrastkit.miners.semi_hard import SemiHardMiner, semi_hard_triplets
from contrastkit.pairs import Pairs, Triplets, all_pairs, all_triplets, to_pairs

__all__ = [
    "BatchAllMiner",
    "BatchHardMiner",
    "DegenerateBatchWarning",
    "DistanceWeightedMiner",
    "Miner",
    "Pairs",
    "SemiHardMiner",
    "Triplets",
    "all_pairs",
    "all_triplets",
    "batch_all_triplets",
    "batch_hard_triplets",
    "distance_weighted_triplets",
    "distance_weights",
    "mine_hard_negatives",
    "reset_degenerate_warnings",
    "semi_hard_triplets",
    "to_pairs",
]
