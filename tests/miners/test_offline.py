"""Offline hard-negative mining against an explicit loop and hand-made cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit.miners import mine_hard_negatives


def _loop(anchors, corpus, pos_idx, k, margin, max_sim, exclude):
    a, c = F.normalize(anchors, dim=1), F.normalize(corpus, dim=1)
    out = []
    for i in range(len(a)):
        sims = [float(a[i] @ c[j]) for j in range(len(c))]
        ps = sims[int(pos_idx[i])] if pos_idx[i] >= 0 else None
        ok = []
        for j, s in enumerate(sims):
            if j == pos_idx[i] or (exclude is not None and exclude[i, j]):
                continue
            if ps is not None and s > ps - margin:
                continue
            if max_sim is not None and s > max_sim:
                continue
            ok.append((s, j))
        ok.sort(key=lambda t: -t[0])
        row = [j for _, j in ok[:k]]
        out.append(row + [-1] * (k - len(row)))
    return torch.tensor(out)


@pytest.mark.parametrize("margin,max_sim", [(0.0, None), (0.1, None), (0.05, 0.5)])
def test_matches_explicit_loop(margin, max_sim):
    g = torch.Generator().manual_seed(0)
    anchors, corpus = torch.randn(37, 8, generator=g), torch.randn(50, 8, generator=g)
    pos = torch.randint(0, 50, (37,), generator=g)
    pos[3] = -1  # a positive outside the corpus: no margin test for that row
    exclude = torch.rand(37, 50, generator=g) < 0.1
    got = mine_hard_negatives(
        anchors,
        corpus,
        positive_index=pos,
        k=4,
        margin=margin,
        max_similarity=max_sim,
        exclude=exclude,
        chunk=8,
    )
    assert torch.equal(got, _loop(anchors, corpus, pos, 4, margin, max_sim, exclude))


def test_positive_embeddings_set_the_margin():
    anchors = torch.tensor([[1.0, 0.0]])
    positives = torch.tensor([[0.8, 0.6]])  # cos 0.8
    corpus = torch.tensor([[0.95, 0.31], [0.6, 0.8], [0.0, 1.0]])  # cos ≈ 0.95, 0.6, 0
    got = mine_hard_negatives(anchors, corpus, positives=positives, k=3, margin=0.1)
    assert got.tolist() == [[1, 2, -1]]  # 0.95 > 0.8 − 0.1 is a likely false negative


def test_errors_name_the_shape():
    with pytest.raises(ValueError, match="share D"):
        mine_hard_negatives(torch.randn(2, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="k must be"):
        mine_hard_negatives(torch.randn(2, 3), torch.randn(4, 3), k=0)
