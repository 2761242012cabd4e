"""Recipes: complete methods composed from the toolbox, each one short file."""

from contrastkit.recipes.barlow_twins import BarlowTwins, BarlowTwinsConfig
from contrastkit.recipes.bpr_mf import BPRMF, BPRMFConfig
from contrastkit.recipes.byol import BYOL, BYOLConfig
from contrastkit.recipes.byol_a import BYOLA, BYOLAConfig
from contrastkit.recipes.clap import CLAP, CLAPConfig
from contrastkit.recipes.clip import CLIP, CLIPConfig
from contrastkit.recipes.cola import COLA, COLAConfig
from contrastkit.recipes.csi import CSI, CSIConfig
from contrastkit.recipes.dino import DINO, DINOConfig
from contrastkit.recipes.grace import GRACE, GRACEConfig
from contrastkit.recipes.graphcl import GraphCL, GraphCLConfig
from contrastkit.recipes.infograph import InfoGraph, InfoGraphConfig
from contrastkit.recipes.lightgcn import LightGCNConfig, LightGCNRecipe
from contrastkit.recipes.moco import MoCo, MoCoConfig
from contrastkit.recipes.mocov3 import MoCoV3, MoCoV3Config
from contrastkit.recipes.nnclr import NNCLR, NNCLRConfig
from contrastkit.recipes.scarf import SCARF, SCARFConfig
from contrastkit.recipes.sgl import SGL, SGLConfig
from contrastkit.recipes.simclr import SimCLR, SimCLRConfig
from contrastkit.recipes.simcse import SimCSE, SimCSEConfig
from contrastkit.recipes.simgcl import SimGCL, SimGCLConfig
from contrastkit.recipes.simsiam import SimSiam, SimSiamConfig
from contrastkit.recipes.supcon import SupCon, SupConConfig
from contrastkit.recipes.supervised import Supervised, SupervisedConfig
from contrastkit.recipes.swav import SwAV, SwAVConfig
from contrastkit.recipes.text_supcon import TextSupCon, TextSupConConfig
from contrastkit.recipes.two_tower import TwoTower, TwoTowerConfig
from contrastkit.recipes.vicreg import VICReg, VICRegConfig
from contrastkit.recipes.xsimgcl import XSimGCL, XSimGCLConfig
from contrastkit.train.recipe import LossOutput, Recipe

#: CLI / config name → (recipe class, config dataclass)
RECIPES = {
    "simclr": (SimCLR, SimCLRConfig),
    "supcon": (SupCon, SupConConfig),
    "supervised": (Supervised, SupervisedConfig),
    "moco": (MoCo, MoCoConfig),
    "mocov3": (MoCoV3, MoCoV3Config),
    "byol": (BYOL, BYOLConfig),
    "simsiam": (SimSiam, SimSiamConfig),
    "swav": (SwAV, SwAVConfig),
    "barlow_twins": (BarlowTwins, BarlowTwinsConfig),
    "vicreg": (VICReg, VICRegConfig),
    "nnclr": (NNCLR, NNCLRConfig),
    "dino": (DINO, DINOConfig),
    "simcse": (SimCSE, SimCSEConfig),
    "text_supcon": (TextSupCon, TextSupConConfig),
    "clip": (CLIP, CLIPConfig),
    "graphcl": (GraphCL, GraphCLConfig),
    "infograph": (InfoGraph, InfoGraphConfig),
    "grace": (GRACE, GRACEConfig),
    "two_tower": (TwoTower, TwoTowerConfig),
    "scarf": (SCARF, SCARFConfig),
    "bpr_mf": (BPRMF, BPRMFConfig),
    "lightgcn": (LightGCNRecipe, LightGCNConfig),
    "sgl": (SGL, SGLConfig),
    "simgcl": (SimGCL, SimGCLConfig),
    "xsimgcl": (XSimGCL, XSimGCLConfig),
    "cola": (COLA, COLAConfig),
    "byol_a": (BYOLA, BYOLAConfig),
    "clap": (CLAP, CLAPConfig),
    "csi": (CSI, CSIConfig),
}

__all__ = [
    "BPRMF",
    "BYOL",
    "BYOLA",
    "CLAP",
    "CLIP",
    "COLA",
    "CSI",
    "DINO",
    "GRACE",
    "NNCLR",
    "RECIPES",
    "SCARF",
    "SGL",
    "BPRMFConfig",
    "BYOLAConfig",
    "BYOLConfig",
    "BarlowTwins",
    "BarlowTwinsConfig",
    "CLAPConfig",
    "CLIPConfig",
    "COLAConfig",
    "CSIConfig",
    "DINOConfig",
    "GRACEConfig",
    "GraphCL",
    "GraphCLConfig",
    "InfoGraph",
    "InfoGraphConfig",
    "LightGCNConfig",
    "LightGCNRecipe",
    "LossOutput",
    "MoCo",
    "MoCoConfig",
    "MoCoV3",
    "MoCoV3Config",
    "NNCLRConfig",
    "Recipe",
    "SCARFConfig",
    "SGLConfig",
    "SimCLR",
    "SimCLRConfig",
    "SimCSE",
    "SimCSEConfig",
    "SimGCL",
    "SimGCLConfig",
    "SimSiam",
    "SimSiamConfig",
    "SupCon",
    "SupConConfig",
    "Supervised",
    "SupervisedConfig",
    "SwAV",
    "SwAVConfig",
    "TextSupCon",
    "TextSupConConfig",
    "TwoTower",
    "TwoTowerConfig",
    "VICReg",
    "VICRegConfig",
    "XSimGCL",
    "XSimGCLConfig",
]
