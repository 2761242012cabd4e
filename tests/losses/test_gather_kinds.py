"""``gather`` has one type in every loss: None, "instances" or "labels" (as ``info_nce``).

The losses whose ``gather`` was a bool still take one, with a DeprecationWarning that names the
new value (``True`` is the kind it meant: "labels" for ``sup_con``, "instances" elsewhere).
Outside a process group every kind is the identity; the distributed behaviour is tested in
``tests/distributed``.
"""

from __future__ import annotations

import inspect

import pytest
import torch

import contrastkit.losses as losses
from contrastkit.losses import (
    BarlowTwinsLoss,
    DebiasedInfoNCELoss,
    DINOLoss,
    HardNegativeInfoNCELoss,
    InfoNCELoss,
    NTXentLoss,
    SupConLoss,
    SwAVLoss,
    VICRegLoss,
    barlow_twins,
    info_nce,
    nt_xent,
    sinkhorn_knopp,
    sup_con,
    update_center,
    vicreg,
)
from contrastkit.losses._gather import BOOL_GATHER

F64 = torch.float64


def _with_gather():
    for name in losses.__all__:
        obj = getattr(losses, name)
        target = obj.__init__ if isinstance(obj, type) else obj
        params = inspect.signature(target).parameters
        if "gather" in params:
            yield name, params["gather"]


def test_every_gather_is_an_optional_kind_defaulting_to_none():
    found = dict(_with_gather())
    assert {
        "info_nce",
        "nt_xent",
        "sup_con",
        "debiased_info_nce",
        "hard_negative_info_nce",
        "barlow_twins",
        "vicreg",
        "vicreg_terms",
        "swav",
        "sinkhorn_knopp",
        "update_center",
        "InfoNCELoss",
        "NTXentLoss",
        "SupConLoss",
        "DebiasedInfoNCELoss",
        "HardNegativeInfoNCELoss",
        "BarlowTwinsLoss",
        "VICRegLoss",
        "SwAVLoss",
        "DINOLoss",
    } <= set(found)
    for name, param in found.items():
        assert param.default is None, name
        assert param.annotation == "str | None", (name, param.annotation)


def _data():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 5, generator=g, dtype=F64)
    return z, torch.randn(8, 5, generator=g, dtype=F64), torch.tensor([0, 1, 2, 3] * 2)


@pytest.mark.parametrize("kind", ["instances", "labels"])
def test_gathering_modules_are_the_identity_outside_a_process_group(kind):
    z, z2, ids = _data()
    for cls in (InfoNCELoss, SupConLoss, DebiasedInfoNCELoss, HardNegativeInfoNCELoss):
        gathered, local = cls(gather=kind), cls()
        assert gathered.gather == kind
        if cls is SupConLoss:
            got, want = gathered(z, ids), local(z, ids)
        else:
            got, want = gathered(z, query_ids=ids), local(z, query_ids=ids)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for cls in (BarlowTwinsLoss, VICRegLoss):
        torch.testing.assert_close(cls(gather=kind)(z, z2), cls()(z, z2), rtol=0, atol=0)
    scores = [z, z2]
    torch.testing.assert_close(SwAVLoss(gather=kind)(scores), SwAVLoss()(scores), rtol=0, atol=0)
    assert DINOLoss(5, gather=kind).gather == kind
    if kind == "instances":
        torch.testing.assert_close(NTXentLoss(gather=kind)(z, z2), NTXentLoss()(z, z2))


def test_nt_xent_refuses_labels():
    z, z2, _ = _data()
    with pytest.raises(ValueError, match="gather must be None or 'instances', got 'labels'"):
        nt_xent(z, z2, gather="labels")
    with pytest.raises(ValueError, match="gather must be None or 'instances'"):
        NTXentLoss(gather="labels")


def test_bad_kinds_raise_clearly():
    z, z2, ids = _data()
    for bad in ("rows", "instance", 1):
        with pytest.raises(ValueError, match=r"gather must be None, 'instances' .* or 'labels'"):
            sup_con(z, ids, gather=bad)
        with pytest.raises(ValueError, match=r"gather must be None, 'instances'"):
            InfoNCELoss(gather=bad)
        with pytest.raises(ValueError, match=r"gather must be None, 'instances'"):
            barlow_twins(z, z2, gather=bad)
        with pytest.raises(ValueError, match=r"gather must be None, 'instances'"):
            DINOLoss(5, gather=bad)
    # losses that never took a bool do not start now: True could mean either kind
    for bad in (True, False):
        with pytest.raises(ValueError, match=r"gather must be None, 'instances'"):
            info_nce(z, query_ids=ids, gather=bad)
        with pytest.raises(ValueError, match=r"gather must be None, 'instances'"):
            DebiasedInfoNCELoss(gather=bad)


def test_a_bool_gather_is_deprecated_and_mapped_to_its_kind():
    z, z2, ids = _data()
    assert BOOL_GATHER["sup_con"] == "labels"
    calls = [
        ("nt_xent", lambda g: nt_xent(z, z2, gather=g)),
        ("sup_con", lambda g: sup_con(z, ids, gather=g)),
        ("barlow_twins", lambda g: barlow_twins(z, z2, gather=g)),
        ("vicreg", lambda g: vicreg(z, z2, gather=g)),
        ("sinkhorn_knopp", lambda g: sinkhorn_knopp(z, gather=g)),
        ("update_center", lambda g: update_center(torch.zeros(1, 5, dtype=F64), [z], gather=g)),
    ]
    for name, call in calls:
        kind = BOOL_GATHER[name]
        with pytest.warns(DeprecationWarning, match=rf"{name}: gather=True .* gather='{kind}'"):
            got = call(True)
        torch.testing.assert_close(got, call(kind), rtol=0, atol=0)
        with pytest.warns(DeprecationWarning, match=rf"{name}: gather=False .* gather=None"):
            call(False)
    # the modules store the mapped kind once
    for cls, kind in ((SupConLoss, "labels"), (NTXentLoss, "instances"), (SwAVLoss, "instances")):
        with pytest.warns(DeprecationWarning, match=f"gather='{kind}'"):
            assert cls(gather=True).gather == kind
    with pytest.warns(DeprecationWarning, match="gather='instances'"):
        assert DINOLoss(5, gather=True).gather == "instances"
