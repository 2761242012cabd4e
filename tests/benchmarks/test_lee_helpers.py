"""The Lee benchmark's halves helpers (``benchmarks/_lee_helpers.py``): benchmark code, not
library API, tested in the default suite. Moved here from ``tests/evaluate/test_text_eval.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _lee_helpers import disjoint_halves, halves_retrieval, split_halves


def test_split_halves_and_halves_retrieval_against_a_loop():
    assert split_halves(["a b c", "w x y z"]) == (["a", "w x"], ["b c", "y z"])
    with pytest.raises(ValueError, match="document 1 has 1 word"):
        split_halves(["a b", "lonely"])
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(12, 8, generator=g), torch.randn(12, 8, generator=g)
    b[:6] = a[:6] + 0.1 * b[:6]  # half of the pairs are easy to find
    got = halves_retrieval(a, b, k=5)

    def loop(q, c):  # rank of the partner by cosine, by hand
        q, c = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(c, dim=1)
        rr, hit = [], []
        for i in range(len(q)):
            s = (q[i] * c).sum(1)
            rank = 1 + int((s > s[i]).sum())
            rr.append(1.0 / rank if rank <= 5 else 0.0)
            hit.append(float(rank == 1))
        return sum(rr) / len(rr), sum(hit) / len(hit)

    (m1, r1), (m2, r2) = loop(a, b), loop(b, a)
    assert got["mrr@5"] == pytest.approx((m1 + m2) / 2, abs=1e-6)
    assert got["recall@1"] == pytest.approx((r1 + r2) / 2, abs=1e-6)
    assert halves_retrieval(a, a.clone())["recall@1"] == 1.0  # analytic: identical halves
    with pytest.raises(ValueError, match="same shape"):
        halves_retrieval(a, b[:5])
    # searching other keys: first -> second_keys and second -> first_keys, by the same loop
    c, d = torch.randn(12, 8, generator=g), torch.randn(12, 8, generator=g)
    got = halves_retrieval(a, b, k=5, first_keys=c, second_keys=d)
    (m1, r1), (m2, r2) = loop(a, d), loop(b, c)
    assert got["mrr@5"] == pytest.approx((m1 + m2) / 2, abs=1e-6)
    assert got["recall@1"] == pytest.approx((r1 + r2) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="both first_keys and second_keys"):
        halves_retrieval(a, b, first_keys=c)
    with pytest.raises(ValueError, match="same shape"):
        halves_retrieval(a, b, first_keys=c, second_keys=d[:5])


def test_disjoint_halves_drop_the_partners_words():
    first, second = split_halves(["Fire crews reach Gunning. The fire, they say, is out", "a b"])
    got = disjoint_halves(first, second)
    # the shared word (Fire / fire,) goes from both sides, with its punctuation
    assert got == (["crews reach Gunning. The", "a"], ["they say, is out", "b"]), got
    assert disjoint_halves(["Same words"], ["same WORDS"]) == ([""], [""])
    for a, b in zip(*disjoint_halves(["x y z w", "p q r"], ["z w v", "r s"])):
        assert not ({t.lower() for t in a.split()} & {t.lower() for t in b.split()})
    with pytest.raises(ValueError, match="one half per document"):
        disjoint_halves(["a"], ["b", "c"])


def test_the_benchmark_scores_validation_with_these_helpers():
    import text_simcse_lee

    g = torch.Generator().manual_seed(1)
    a, b, c, d = (torch.randn(10, 6, generator=g) for _ in range(4))
    got = text_simcse_lee.validation_scores(a, b, c, d)
    lexical, topical = halves_retrieval(a, b), halves_retrieval(a, b, first_keys=c, second_keys=d)
    assert got["mrr@10"] == lexical["mrr@10"] and got["topical_mrr@10"] == topical["mrr@10"]
    assert got["score"] == pytest.approx(0.5 * (lexical["mrr@10"] + topical["mrr@10"]))


def test_the_library_no_longer_exports_them():
    import contrastkit.evaluate as evaluate
    import contrastkit.evaluate.text as text

    for name in ("split_halves", "halves_retrieval", "disjoint_halves"):
        assert not hasattr(evaluate, name) and not hasattr(text, name)
