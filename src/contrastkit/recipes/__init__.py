"""Recipes: complete methods composed from the toolbox, each one short file."""

from contrastkit.recipes.simclr import SimCLR, SimCLRConfig
from contrastkit.recipes.supcon import SupCon, SupConConfig
from contrastkit.recipes.supervised import Supervised, SupervisedConfig
from contrastkit.train.recipe import LossOutput, Recipe

RECIPES = {
    "simclr": (SimCLR, SimCLRConfig),
    "supcon": (SupCon, SupConConfig),
    "supervised": (Supervised, SupervisedConfig),
}

__all__ = [
    "RECIPES",
    "LossOutput",
    "Recipe",
    "SimCLR",
    "SimCLRConfig",
    "SupCon",
    "SupConConfig",
    "Supervised",
    "SupervisedConfig",
]
