"""LightGCN propagation, its normalised adjacency, SGL's dropout views and SimGCL's noise."""

from __future__ import annotations

import pytest
import torch

from contrastkit.encoders.lightgcn import (
    LightGCN,
    _SymmetricSpMM,
    edge_dropout_adjacency,
    node_dropout_adjacency,
    normalized_adjacency,
)

PAIRS = torch.tensor([[0, 0], [0, 1], [1, 1], [2, 2], [0, 1], [2, 0]])  # a duplicate
U, I = 3, 4  # item 3 has no interaction


def dense_reference(pairs, n_users, n_items):
    """D^-1/2 A D^-1/2 by hand, with a dense (U+I)² matrix and Python loops."""
    n = n_users + n_items
    a = torch.zeros(n, n, dtype=torch.float64)
    for u, i in pairs.tolist():
        a[u, n_users + i] = a[n_users + i, u] = 1.0
    deg = a.sum(1)
    out = torch.zeros_like(a)
    for r in range(n):
        for c in range(n):
            if a[r, c]:
                out[r, c] = 1.0 / (deg[r] * deg[c]).sqrt()
    return out


def test_normalized_adjacency_matches_a_dense_hand_computation():
    adj = normalized_adjacency(PAIRS, U, I)
    assert adj.layout == torch.sparse_csr and adj.shape == (U + I, U + I)
    assert adj.values().numel() == 2 * 5  # the duplicate counts once
    dense = adj.to_dense().double()
    assert torch.allclose(dense, dense_reference(PAIRS, U, I), atol=1e-7)
    assert torch.equal(dense, dense.T)
    assert dense[U + 3].abs().sum() == 0  # the isolated item's row is empty
    # user 0 (degree 2) and item 1 (degree 2): 1/2
    assert dense[0, U + 1].item() == pytest.approx(0.5)


def test_propagate_with_zero_layers_is_the_embedding_table():
    model = LightGCN(U, I, dim=5, layers=0)
    users, items = model.propagate(normalized_adjacency(PAIRS, U, I))
    assert torch.equal(users, model.user_embedding.weight)
    assert torch.equal(items, model.item_embedding.weight)


def test_propagate_is_the_mean_of_the_layers_and_its_gradient_is_exact():
    torch.manual_seed(0)
    model = LightGCN(U, I, dim=3, layers=2).double()
    adj = normalized_adjacency(PAIRS, U, I)
    a = adj.to_dense().double()
    e0 = model.ego()
    want = (e0 + a @ e0 + a @ a @ e0) / 3
    users, items, layers = model.propagate(adj.to(torch.float64), return_layers=True)
    assert torch.allclose(torch.cat([users, items]), want, atol=1e-12)
    assert len(layers) == 3 and torch.allclose(layers[2], a @ a @ e0, atol=1e-12)
    skip_u, _ = model.propagate(adj.to(torch.float64), skip_input=True)
    assert torch.allclose(skip_u, ((a @ e0 + a @ a @ e0) / 2)[:U], atol=1e-12)
    # the symmetric backward: gradcheck, and the tables' gradient equals the dense one
    adj64 = adj.to(torch.float64)
    x = torch.randn(U + I, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: _SymmetricSpMM.apply(adj64, x), (x,))
    w = torch.randn(U + I, 3, dtype=torch.float64)
    (torch.cat(model.propagate(adj64)) * w).sum().backward()
    e = model.ego().detach().requires_grad_(True)
    ((e + a @ e + a @ a @ e) / 3 * w).sum().backward()
    assert torch.allclose(model.user_embedding.weight.grad, e.grad[:U], atol=1e-12)
    assert torch.allclose(model.item_embedding.weight.grad, e.grad[U:], atol=1e-12)


def test_noise_moves_each_row_by_eps_and_keeps_the_signs():
    torch.manual_seed(0)
    model = LightGCN(U, I, dim=8, layers=1)
    adj = normalized_adjacency(PAIRS, U, I)
    eps = 0.1
    g = torch.Generator().manual_seed(3)
    _, _, clean = model.propagate(adj, return_layers=True)
    _, _, noisy = model.propagate(adj, noise_eps=eps, generator=g, return_layers=True)
    diff = noisy[1] - clean[1]
    nonzero = (clean[1] != 0).all(1)  # the isolated item's row stays 0: sign(0) = 0
    assert nonzero.sum() == U + I - 1
    norms = diff[nonzero].norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, eps), atol=1e-6)
    assert bool((torch.sign(diff) == torch.sign(clean[1]))[nonzero].all())
    assert bool((torch.sign(noisy[1]) == torch.sign(clean[1])).all())  # same orthant
    # seeded: the same generator seed gives the same noise
    _, _, again = model.propagate(
        adj, noise_eps=eps, generator=torch.Generator().manual_seed(3), return_layers=True
    )
    assert torch.equal(again[1], noisy[1])


@pytest.mark.parametrize("views", [edge_dropout_adjacency, node_dropout_adjacency])
def test_dropout_views_are_seeded_and_renormalised(views):
    torch.manual_seed(0)
    pairs = torch.stack([torch.randint(20, (200,)), torch.randint(30, (200,))], 1)
    a = views(pairs, 20, 30, 0.2, generator=torch.Generator().manual_seed(5)).to_dense()
    b = views(pairs, 20, 30, 0.2, generator=torch.Generator().manual_seed(5)).to_dense()
    c = views(pairs, 20, 30, 0.2, generator=torch.Generator().manual_seed(6)).to_dense()
    assert torch.equal(a, b) and not torch.equal(a, c)
    full = normalized_adjacency(pairs, 20, 30).to_dense()
    kept = (a != 0).nonzero()
    assert bool((full[kept[:, 0], kept[:, 1]] != 0).all())  # a subgraph of the graph
    # what is left is normalised again
    kept_pairs = (a[:20, 20:] != 0).nonzero()
    assert torch.allclose(a, normalized_adjacency(kept_pairs, 20, 30).to_dense())
    if views is edge_dropout_adjacency:
        n_edges = int((full[:20, 20:] != 0).sum())
        assert int((a[:20, 20:] != 0).sum()) == round(n_edges * 0.8)


def test_clear_errors():
    with pytest.raises(ValueError, match="outside"):
        normalized_adjacency(torch.tensor([[0, 9]]), 2, 2)
    with pytest.raises(ValueError, match=r"\(M, 2\) integer"):
        normalized_adjacency(torch.rand(3, 2), 2, 2)
    with pytest.raises(ValueError, match="must be"):
        LightGCN(2, 2).propagate(normalized_adjacency(PAIRS, U, I))
    with pytest.raises(ValueError, match="dropout ratio"):
        edge_dropout_adjacency(PAIRS, U, I, 1.0)
    with pytest.raises(ValueError, match="skip_input"):
        LightGCN(U, I, layers=0).propagate(normalized_adjacency(PAIRS, U, I), skip_input=True)


def test_config_rebuilds_and_out_dim():
    model = LightGCN(U, I, dim=16, layers=2, init="normal")
    again = LightGCN(**model.config)
    assert again.out_dim == 16 and again.layers == 2
    assert model.user_embedding.weight.std().item() == pytest.approx(0.1, rel=0.5)


def test_export_round_trip(tmp_path, monkeypatch):
    import contrastkit.encoders as encoders
    from contrastkit.train.export import export_encoder, load_encoder

    monkeypatch.setitem(encoders.ENCODERS, "lightgcn", LightGCN)  # the registry's entry
    model = LightGCN(U, I, dim=8, layers=2)
    export_encoder(model, tmp_path, "lightgcn")
    loaded = load_encoder(tmp_path)
    adj = normalized_adjacency(PAIRS, U, I)
    for a, b in zip(model.propagate(adj), loaded.propagate(adj)):
        assert torch.equal(a, b)


def test_propagation_under_bf16_autocast_runs_in_float32():
    """Sparse CSR products have no bf16 kernel: under autocast (the trainer's bf16 path) the
    propagation still runs, in float32, with the same result and gradients."""
    torch.manual_seed(0)
    model = LightGCN(U, I, dim=4, layers=2)
    adj = normalized_adjacency(PAIRS, U, I)
    users, items = model.propagate(adj)
    (users.sum() + items.sum()).backward()
    want = model.user_embedding.weight.grad.clone()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        users_bf, items_bf = model.propagate(adj)
    assert users_bf.dtype == torch.float32
    torch.testing.assert_close(users_bf, users)
    (users_bf.sum() + items_bf.sum()).backward()
    torch.testing.assert_close(model.user_embedding.weight.grad, want)
