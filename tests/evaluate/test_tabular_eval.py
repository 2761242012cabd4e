"""The label-fraction protocol on a synthetic separable table: every figure present, the
methods learn, selection never looks at the test labels, fine-tuning leaves the pre-trained
encoder alone, and the validation split is the whole one unless scaled."""

from __future__ import annotations

import pytest
import torch

from contrastkit.encoders.tabular import TabularMLP
from contrastkit.evaluate.graph import label_fraction_subset
from contrastkit.evaluate.tabular import (
    FinetuneConfig,
    encode,
    hgb_accuracy,
    label_fraction_eval,
    majority_accuracy,
    probe_accuracy,
    select_on_validation,
    train_classifier,
)

N_NUMERIC, CARDS = 4, [4]
FAST = FinetuneConfig(max_steps=150, eval_every=25, patience=3, lr=3e-3)


def table(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """3 classes: the class shifts the first two numeric columns and sets the code column."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    num = torch.randn(n, N_NUMERIC, generator=g) * 0.5
    num[:, 0] += 2.0 * (y == 1).float()
    num[:, 1] += 2.0 * (y == 2).float()
    code = (y + 1).float()
    code[torch.rand(n, generator=g) < 0.2] = 0.0  # missing codes
    return torch.cat([num, code[:, None]], 1), y


def splits(seed: int = 0):
    xa, ya = table(300, seed)
    xv, yv = table(90, seed + 1)
    xt, yt = table(120, seed + 2)
    return xa, ya, xv, yv, xt, yt


def make() -> TabularMLP:
    return TabularMLP(N_NUMERIC, CARDS, hidden=32, depth=2)


def run(**kw):
    torch.manual_seed(7)
    pre = make()
    base = dict(encoder_factory=make, pretrained_encoder=pre, fractions=(0.1, 1.0), seed=0,
                n_numeric=N_NUMERIC, finetune=FAST, label_subset=label_fraction_subset)  # fmt: skip
    base.update(kw)
    return pre, label_fraction_eval(*splits(), **base)


def test_every_figure_is_reported_and_the_methods_learn():
    _, r = run()
    for f in ("0.1", "1"):
        for m in ("probe", "finetune", "scratch", "hgb"):
            assert 0.0 <= r[f"{m}@{f}"] <= 1.0 and f"{m}@{f}:val" in r
            assert r[f"{m}@{f}:seconds"] >= 0
        assert r[f"probe@{f}:C"] > 0 and r[f"scratch@{f}:steps"] <= 150
    assert r["labelled@1"] == 300 and 25 <= r["labelled@0.1"] <= 35
    assert 0.2 < r["majority"] < 0.5  # 3 balanced classes
    for m in ("probe", "finetune", "scratch", "hgb"):
        assert r[f"{m}@1"] > 0.9, (m, r[f"{m}@1"])
    assert r["hgb@0.1"] > 0.8 and r["scratch@0.1"] > 0.8


def test_selection_never_reads_the_test_labels():
    xa, ya, xv, yv, xt, yt = splits()
    kw = dict(encoder_factory=make, pretrained_encoder=make(), fractions=(0.1,),
              n_numeric=N_NUMERIC, finetune=FAST, label_subset=label_fraction_subset)  # fmt: skip
    torch.manual_seed(0)
    a = label_fraction_eval(xa, ya, xv, yv, xt, yt, **kw)
    torch.manual_seed(0)
    b = label_fraction_eval(xa, ya, xv, yv, xt, yt[torch.randperm(len(yt))], **kw)
    for key in a:
        if key.endswith(":val") or key.endswith(":C") or key.endswith(":steps"):
            assert a[key] == b[key], key


def test_finetune_trains_a_copy_and_is_reproducible():
    pre, r1 = run(methods=("finetune",))
    torch.manual_seed(7)
    fresh = make()
    for p, q in zip(pre.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(p, q)  # the pre-trained encoder is untouched
    _, r2 = run(methods=("finetune",))

    def timeless(r):
        return {k: v for k, v in r.items() if not k.endswith(":seconds")}

    assert timeless(r1) == timeless(r2)
    assert "probe@1" not in r1 and "hgb@1" not in r1 and "majority" in r1


def test_without_a_pretrained_encoder_only_the_baselines_run():
    r = label_fraction_eval(*splits(), encoder_factory=make, fractions=(1.0,),
                            n_numeric=N_NUMERIC, finetune=FAST, methods=("scratch", "hgb"),
                            label_subset=label_fraction_subset)  # fmt: skip
    assert {"scratch@1", "hgb@1", "majority"} <= set(r)
    assert not any(k.startswith(("probe", "finetune")) for k in r)


def test_validation_is_whole_unless_scaled():
    calls = []

    def spy(labels, fraction, seed):
        calls.append((len(labels), fraction, seed))
        return label_fraction_subset(labels, fraction, seed)

    run(methods=("hgb",), fractions=(0.1,), label_subset=spy)
    assert calls == [(300, 0.1, 0)]  # the training labels only
    calls.clear()
    run(methods=("hgb",), fractions=(0.1,), label_subset=spy, scale_validation=True)
    assert calls == [(300, 0.1, 0), (90, 0.1, 1)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="fractions"):
        run(fractions=(0.0,))
    with pytest.raises(ValueError, match="unknown methods"):
        run(methods=("svm",))
    xa, ya, xv, yv, xt, yt = splits()
    with pytest.raises(ValueError, match="one label per row"):
        label_fraction_eval(xa, ya[:-1], xv, yv, xt, yt, encoder_factory=make,
                            label_subset=label_fraction_subset)  # fmt: skip


def test_helpers():
    xa, ya, xv, yv, xt, yt = splits()
    assert majority_accuracy(torch.tensor([2, 2, 1]), torch.tensor([2, 0])) == 0.5
    r = hgb_accuracy(xa, ya, xv, yv, xt, yt, n_numeric=N_NUMERIC)
    assert r["accuracy"] > 0.9 and r["params"]
    one = probe_accuracy(xa[:3], torch.zeros(3, dtype=torch.long), xv, yv, xt, yt)
    assert one["accuracy"] == pytest.approx(float((yt == 0).float().mean()))
    enc = make().train()
    assert encode(enc, xa).shape == (300, 32) and enc.training
    model, info = train_classifier(make(), xa, ya, xv, yv, 3, FAST, seed=1)
    assert info["best_step"] >= 25 and not model.training
    r = {"probe@0.1": 0.5, "probe@0.1:val": 0.9, "finetune@0.1": 0.7, "finetune@0.1:val": 0.9}
    assert select_on_validation(r, 0.1) == ("probe", 0.5)  # a tie keeps the first
    with pytest.raises(KeyError):
        select_on_validation(r, 1.0)


def test_the_default_label_subset_is_the_tables_one():
    tables = pytest.importorskip("contrastkit.data.tables")
    calls = []
    real = tables.label_fraction_indices

    def spy(labels, fraction, seed):
        calls.append(fraction)
        return real(labels, fraction, seed)

    mp = pytest.MonkeyPatch()
    mp.setattr(tables, "label_fraction_indices", spy)
    try:
        r = label_fraction_eval(*splits(), encoder_factory=make, fractions=(0.1,),
                                n_numeric=N_NUMERIC, methods=("hgb",))  # fmt: skip
    finally:
        mp.undo()
    assert calls == [0.1] and "hgb@0.1" in r
