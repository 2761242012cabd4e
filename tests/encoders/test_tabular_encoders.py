"""Tabular encoders: shapes, the categorical embeddings, rebuilding from ``config``, rows
embedded independently, and the clear error on a code out of range."""

from __future__ import annotations

import pytest
import torch

from contrastkit.encoders.tabular import (
    TabularInput,
    TabularMLP,
    TabularResNet,
    default_cat_dim,
    tabular_mlp,
    tabular_resnet,
)

CARDS = [3, 5]


def rows(n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    num = torch.randn(n, 4, generator=g)
    codes = torch.stack([torch.randint(0, c, (n,), generator=g) for c in CARDS], 1).float()
    return torch.cat([num, codes], 1)


@pytest.mark.parametrize("cls", [TabularMLP, TabularResNet])
def test_shapes_and_out_dim(cls):
    enc = cls(n_numeric=4, cardinalities=CARDS, hidden=32, depth=3)
    assert enc(rows()).shape == (6, 32) and enc.out_dim == 32
    enc = cls(n_numeric=4, cardinalities=CARDS, hidden=32, depth=2, out_dim=8, cat_dim=3)
    assert enc(rows()).shape == (6, 8) and enc.out_dim == 8
    assert enc.input.out_dim == 4 + 2 * 3


@pytest.mark.parametrize("factory", [tabular_mlp, tabular_resnet])
def test_rebuilt_from_config_gives_the_same_outputs(factory):
    enc = factory(n_numeric=4, cardinalities=CARDS, hidden=16, depth=2, dropout=0.1).eval()
    twin = factory(**enc.config).eval()
    twin.load_state_dict(enc.state_dict())
    assert torch.equal(twin(rows()), enc(rows()))
    assert set(enc.state_dict()) == set(twin.state_dict())
    assert not any("offsets" in k or "cards" in k for k in enc.state_dict())


@pytest.mark.parametrize("cls", [TabularMLP, TabularResNet])
def test_rows_are_embedded_independently(cls):
    enc = cls(n_numeric=4, cardinalities=CARDS, hidden=16, depth=2).double()
    x = rows(8).double()
    whole = enc(x)
    torch.testing.assert_close(torch.cat([enc(x[:3]), enc(x[3:])]), whole, atol=1e-12, rtol=0)


def test_codes_select_learned_vectors_and_receive_gradients():
    enc = TabularMLP(n_numeric=4, cardinalities=CARDS, hidden=16, depth=2)
    x = rows(2)
    x2 = x.clone()
    x2[0, 4] = (x[0, 4] + 1) % 3  # another code in column 0
    out, out2 = enc(x), enc(x2)
    assert not torch.allclose(out[0], out2[0]) and torch.equal(out[1], out2[1])
    enc(x).sum().backward()
    grad = enc.input.embedding.weight.grad
    used = (x[:, 4:].long() + torch.tensor([0, 3])).flatten().unique()
    assert grad[used].abs().sum() > 0
    unused = torch.ones(8, dtype=torch.bool)
    unused[used] = False
    assert grad[unused].abs().sum() == 0


def test_only_numeric_and_only_categorical_tables():
    num = TabularMLP(n_numeric=3, cardinalities=[], hidden=8, depth=1)
    assert num(torch.randn(5, 3)).shape == (5, 8) and num.input.embedding is None
    cat = TabularResNet(n_numeric=0, cardinalities=[4, 2], hidden=8, depth=1, cat_dim=2)
    assert cat(torch.tensor([[3.0, 1.0], [0.0, 0.0]])).shape == (2, 8)
    with pytest.raises(ValueError, match="at least one column"):
        TabularMLP(n_numeric=0, cardinalities=[])
    with pytest.raises(ValueError, match="cardinalities"):
        TabularMLP(n_numeric=2, cardinalities=[0])


@pytest.mark.parametrize(
    ("col", "value", "shown"), [(0, 3.0, "3.0"), (1, -1.0, "-1.0"), (1, 1.5, "1.5")]
)
def test_a_code_out_of_range_names_its_column(col, value, shown):
    enc = TabularMLP(n_numeric=4, cardinalities=CARDS, hidden=8, depth=1)
    x = rows()
    x[2, 4 + col] = value
    with pytest.raises(ValueError, match=rf"categorical column {col} \(table column {4 + col}\)"):
        enc(x)
    with pytest.raises(ValueError, match=shown):
        enc(x)


def test_nan_code_and_wrong_width_raise():
    enc = TabularResNet(n_numeric=4, cardinalities=CARDS, hidden=8, depth=1)
    x = rows()
    x[0, 5] = float("nan")
    with pytest.raises(ValueError, match="categorical column 1"):
        enc(x)
    with pytest.raises(ValueError, match="built for 6 columns"):
        enc(torch.randn(3, 5))


def test_integer_rows_are_accepted_and_default_cat_dim():
    inp = TabularInput(1, [3], cat_dim=2)
    assert inp(torch.tensor([[1, 2]])).dtype == torch.float32
    assert default_cat_dim([]) == 0 and default_cat_dim([2]) == 2 and default_cat_dim([10**6]) == 16


def test_resnet_with_the_papers_batch_norm_and_bad_options():
    enc = TabularResNet(n_numeric=4, cardinalities=CARDS, hidden=8, depth=2, norm="batch")
    assert enc(rows()).shape == (6, 8)
    with pytest.raises(ValueError, match="norm"):
        TabularResNet(n_numeric=4, norm="group")
    with pytest.raises(ValueError, match="depth"):
        TabularMLP(n_numeric=4, depth=0)
