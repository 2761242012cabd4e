"""Every loss module takes exactly its function's options: the same names, the same defaults.

DESIGN.md, principle 1: a loss is first a pure function, then an ``nn.Module`` whose options are
exactly the function's. The table below pairs every module exported by ``contrastkit.losses``
with its function; a new module without a row fails ``test_the_table_covers_every_module``.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import contrastkit.losses as losses
from contrastkit.losses import (
    BarlowTwinsLoss,
    BPRLoss,
    ContrastiveMarginLoss,
    DebiasedInfoNCELoss,
    DINOLoss,
    HardNegativeInfoNCELoss,
    InfoNCELoss,
    LocalGlobalJSDLoss,
    NegativeCosineLoss,
    NPairLoss,
    NTXentLoss,
    SampledSoftmaxLoss,
    SigmoidPairwiseLoss,
    SupConLoss,
    SwAVLoss,
    TripletMarginLoss,
    VICRegLoss,
    barlow_twins,
    bpr,
    contrastive_margin,
    debiased_info_nce,
    dino,
    hard_negative_info_nce,
    info_nce,
    local_global_jsd,
    n_pair,
    negative_cosine,
    nt_xent,
    sampled_softmax,
    sigmoid_pairwise,
    sup_con,
    swav,
    triplet_margin,
    vicreg,
)
from contrastkit.losses._base import LossModule

IDS = ("query_ids", "key_ids", "negatives", "negative_ids")

# (module, function, the function's keyword-only parameters that are per-call inputs: they go
# to forward, every other keyword-only parameter is an option)
PAIRS = [
    (InfoNCELoss, info_nce, IDS),
    (BPRLoss, bpr, ()),
    (SampledSoftmaxLoss, sampled_softmax, ("query_ids", "key_ids", "key_log_q")),
    (NTXentLoss, nt_xent, ()),
    (SupConLoss, sup_con, ()),
    (DebiasedInfoNCELoss, debiased_info_nce, IDS),
    (HardNegativeInfoNCELoss, hard_negative_info_nce, IDS),
    (SigmoidPairwiseLoss, sigmoid_pairwise, ("query_ids", "key_ids")),
    (NPairLoss, n_pair, ("anchor_ids", "positive_ids")),
    (ContrastiveMarginLoss, contrastive_margin, ("query_ids", "key_ids", "pairs")),
    (TripletMarginLoss, triplet_margin, ("query_ids", "key_ids", "triplets")),
    (NegativeCosineLoss, negative_cosine, ()),
    (LocalGlobalJSDLoss, local_global_jsd, ("local_ids",)),
    (BarlowTwinsLoss, barlow_twins, ()),
    (VICRegLoss, vicreg, ()),
    (SwAVLoss, swav, ()),
    (DINOLoss, dino, ()),
]

# The only options a module has that its function lacks, and why. Keep this list short.
EXCEPTIONS = [
    (
        (InfoNCELoss, NTXentLoss, SupConLoss, SampledSoftmaxLoss),
        {"learn_temperature"},
        "the module keeps τ as log τ, a buffer or (learn_temperature=True) a learnable "
        "parameter; the function takes τ as a float or a tensor",
    ),
    (
        (SigmoidPairwiseLoss,),
        {"learnable"},
        "SigLIP's module keeps τ and the bias as learnable parameters (buffers with "
        "learnable=False); the function takes them as floats or tensors",
    ),
    (
        (ContrastiveMarginLoss, TripletMarginLoss),
        {"miner"},
        "an attached miner fills the function's per-call input (pairs, triplets) when forward "
        "is given none",
    ),
    (
        (DINOLoss,),
        {"out_dim", "center_momentum", "gather", "warmup_teacher_temperature", "warmup_epochs"},
        "DINOLoss holds the state that dino takes as inputs: the center buffer (out_dim wide, "
        "updated by update_center with center_momentum and gather) and the teacher "
        "temperature's warm-up schedule (teacher_temperature_at(epoch))",
    ),
]


def _extras(module: type) -> set[str]:
    return set().union(*(names for mods, names, _ in EXCEPTIONS if module in mods))


def _defaults(params) -> dict[str, object]:
    return {p.name: p.default for p in params}


def function_options(function, inputs) -> dict[str, object]:
    params = inspect.signature(function).parameters.values()
    keyword = [p for p in params if p.kind is p.KEYWORD_ONLY]
    assert set(inputs) <= {p.name for p in keyword}, f"{function.__name__}: unknown inputs"
    return _defaults(p for p in keyword if p.name not in inputs)


def module_options(module: type) -> dict[str, object]:
    params = list(inspect.signature(module.__init__).parameters.values())
    assert params[0].name == "self"
    assert all(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params), module
    return _defaults(params[1:])


def test_the_table_covers_every_module():
    exported = {getattr(losses, name) for name in losses.__all__}
    modules = {obj for obj in exported if isinstance(obj, type) and issubclass(obj, nn.Module)}
    assert modules == {m for m, _, _ in PAIRS}
    assert all(f in exported for _, f, _ in PAIRS)
    assert len({m for m, _, _ in PAIRS}) == len(PAIRS)


@pytest.mark.parametrize("module, function, inputs", PAIRS, ids=[m.__name__ for m, _, _ in PAIRS])
def test_module_options_are_the_function_options(module, function, inputs):
    want = function_options(function, inputs)
    got = module_options(module)
    extras = _extras(module)
    assert extras <= set(got), f"stale exception for {module.__name__}: {extras - set(got)}"
    got = {k: v for k, v in got.items() if k not in extras}
    assert got.keys() == want.keys(), (module.__name__, sorted(got), sorted(want))
    for name, default in want.items():
        assert got[name] == default, f"{module.__name__}({name}=...) default"
        assert type(got[name]) is type(default), f"{module.__name__}({name}=...) default type"


@pytest.mark.parametrize("module, function, inputs", PAIRS, ids=[m.__name__ for m, _, _ in PAIRS])
def test_module_stores_the_options_it_is_given(module, function, inputs):
    if not issubclass(module, LossModule):
        assert module is DINOLoss  # the stateful module with its own __init__
        return
    built = module()
    assert module.function is function
    assert list(built.options()) == list(function_options(function, inputs))
    assert module.__init__.__qualname__ == f"{module.__name__}.__init__"


def test_the_current_positional_conventions_still_work():
    assert float(InfoNCELoss(0.07).temperature) == pytest.approx(0.07)
    assert (
        ContrastiveMarginLoss(0.1, 0.9).pos_margin,
        ContrastiveMarginLoss(0.1, 0.9).neg_margin,
    ) == (
        0.1,
        0.9,
    )
    assert TripletMarginLoss(0.3).margin == 0.3
    assert BarlowTwinsLoss(0.2).lambda_offdiag == 0.2
    v = VICRegLoss(1.0, 2.0, 3.0)
    assert (v.invariance_weight, v.variance_weight, v.covariance_weight) == (1.0, 2.0, 3.0)
    s = SwAVLoss(0.2, 0.1, 5)
    assert (s.temperature, s.epsilon, s.sinkhorn_iterations) == (0.2, 0.1, 5)
    sig = SigmoidPairwiseLoss(0.25, -1.0)
    assert float(sig.temperature.detach()) == pytest.approx(0.25)
    assert float(sig.bias.detach()) == -1.0
    assert DebiasedInfoNCELoss(0.3).temperature == 0.3
    with pytest.raises(TypeError, match=r"InfoNCELoss: .*its options are \['temperature'"):
        InfoNCELoss(0.1, "dot")  # only the temperature is positional
    with pytest.raises(TypeError, match=r"NTXentLoss: .*temprature"):
        NTXentLoss(temprature=0.1)


def test_forward_refuses_an_option_per_call():
    z, ids = torch.randn(8, 4), torch.arange(4).repeat(2)
    with pytest.raises(TypeError, match=r"\['temperature'\] are options.*InfoNCELoss\(temperature"):
        InfoNCELoss()(z, query_ids=ids, temperature=0.5)


def test_options_are_checked_once_when_the_module_is_built():
    with pytest.raises(ValueError, match="reduction must be one of"):
        InfoNCELoss(reduction="avg")
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        DebiasedInfoNCELoss(temperature=float("inf"))
    with pytest.raises(ValueError, match="similarity must be one of"):
        SupConLoss(similarity="cosin")
    with pytest.raises(ValueError, match="chunked=True supports similarity"):
        NTXentLoss(similarity="euclidean", chunked=True)
    with pytest.raises(ValueError, match="block_rows must be ≥ 1"):
        HardNegativeInfoNCELoss(block_rows=0)
    with pytest.raises(ValueError, match="reduction='none' is not defined for symmetric=True"):
        InfoNCELoss(symmetric=True, reduction="none")
    with pytest.raises(ValueError, match="power must be > 0"):
        ContrastiveMarginLoss(power=0.0)
    with pytest.raises(ValueError, match="distance must be one of"):
        TripletMarginLoss(distance="euclidian")
    with pytest.raises(ValueError, match="similarity must be one of"):
        SigmoidPairwiseLoss(similarity="cosin")
    with pytest.raises(ValueError, match="l2_reg must be ≥ 0"):
        NPairLoss(l2_reg=-1.0)


def test_learnable_temperature_module_keeps_log_temperature_in_its_state():
    fixed, learned = InfoNCELoss(0.2), InfoNCELoss(0.2, learn_temperature=True)
    assert set(fixed.state_dict()) == {"log_temperature"} and not list(fixed.parameters())
    assert [n for n, _ in learned.named_parameters()] == ["log_temperature"]
    fresh = InfoNCELoss(learn_temperature=True)
    fresh.load_state_dict(learned.state_dict())
    assert float(fresh.temperature) == pytest.approx(0.2)
    assert "temperature=0.2" in repr(fixed) and "symmetric=False" in repr(fixed)
