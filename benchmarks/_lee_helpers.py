"""The Lee benchmark's label-free validation signal (``text_simcse_lee.py``,
``text_simcse_lee_wise.py``): held-out documents cut in two, each half retrieving its other
half. Benchmark code, not library API; tested by ``tests/benchmarks/test_lee_helpers.py``.

- :func:`split_halves`: cut every document at its middle word.
- :func:`halves_retrieval`: each half finds its partner among all the other halves (MRR@k,
  recall@1, both directions): the lexical task, where shared names and terms are TF-IDF's game.
- :func:`disjoint_halves`: each half without the words its partner has, which turns the task
  topical: word overlap cannot find the partner (TF-IDF scores 0), only learned association
  between different words can.

Run from the ``benchmarks`` folder (as the scripts are): ``from _lee_helpers import ...``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from contrastkit._checks import check_embeddings
from contrastkit.augment.text import drop_shared_words
from contrastkit.evaluate.ranking import retrieval_metrics

__all__ = ["disjoint_halves", "halves_retrieval", "split_halves"]


def split_halves(documents: Sequence[str]) -> tuple[list[str], list[str]]:
    """Cut every document at its middle word: (first halves, second halves).

    Args:
        documents: N strings of at least two words each.

    Example:
        >>> split_halves(["one two three four five"])
        (['one two'], ['three four five'])
    """
    first, second = [], []
    for i, doc in enumerate(documents):
        words = str(doc).split()
        if len(words) < 2:
            raise ValueError(
                f"document {i} has {len(words)} word(s); split_halves needs at least two per "
                f"document (leave short texts out of a halves validation)."
            )
        m = len(words) // 2
        first.append(" ".join(words[:m]))
        second.append(" ".join(words[m:]))
    return first, second


def disjoint_halves(first: Sequence[str], second: Sequence[str]) -> tuple[list[str], list[str]]:
    """Each half without the words of its partner: (first minus second's words, second minus
    first's words).

    With :func:`halves_retrieval` (``first_keys`` / ``second_keys``) this turns the halves task
    into a topical one: a half must find what is left of its partner when every word the two
    share is gone, so exact word overlap (TF-IDF's only signal: it scores 0 for the true
    partner) cannot find it, and only learned association between different words (what a
    topic model or a trained encoder adds: "bushfire" with "crews", "Hume Highway" with
    "Goulburn") can. Words are compared as in :func:`contrastkit.augment.drop_shared_words`.

    Args:
        first, second: the halves of N documents (:func:`split_halves`).

    Returns:
        Two lists of N strings (a half can come out empty when its partner shares all its
        words; an encoder embeds it as it embeds any empty text).

    Example:
        >>> disjoint_halves(["Fire crews at Gunning"], ["the fire, near Goulburn"])
        (['crews at Gunning'], ['the near Goulburn'])
    """
    if len(first) != len(second):
        raise ValueError(
            f"first and second must hold one half per document each, got {len(first)} and "
            f"{len(second)}; use split_halves(documents)."
        )
    pairs = [drop_shared_words(str(a), str(b)) for a, b in zip(first, second)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def halves_retrieval(
    first: Tensor,
    second: Tensor,
    k: int = 10,
    first_keys: Tensor | None = None,
    second_keys: Tensor | None = None,
) -> dict[str, float]:
    """Each half retrieves its document's other half among all the other halves.

    Args:
        first, second: (N, D) embeddings of the first and second halves of N documents
            (:func:`split_halves`), row i of both from document i.
        k: MRR cut-off.
        first_keys, second_keys: (N, D) embeddings searched instead of ``first`` / ``second``
            (first → ``second_keys``, second → ``first_keys``), e.g. of the halves without
            their partner's words (:func:`disjoint_halves`) for a topical version of the task.
            Both or neither.

    Returns:
        ``{"mrr@k", "recall@1"}``, each the mean of both directions (first → second and
        second → first); 1.0 when every half finds its partner first.

    Example:
        >>> import torch
        >>> halves_retrieval(torch.eye(3), torch.eye(3) + 0.1, k=2)["mrr@2"]
        1.0
    """
    if (first_keys is None) != (second_keys is None):
        raise ValueError(
            "give both first_keys and second_keys (the embeddings of both disjoint halves), "
            "or neither."
        )
    if first_keys is None:
        first_keys, second_keys = first, second
    named = {"first": first, "second": second, "first_keys": first_keys, "second_keys": second_keys}
    for name, x in named.items():
        check_embeddings(x, name)
    if len({tuple(x.shape) for x in named.values()}) > 1:
        shapes = {name: tuple(x.shape) for name, x in named.items()}
        raise ValueError(
            f"first, second and their keys must have the same shape (one row per document), "
            f"got {shapes}."
        )
    relevant = [{i} for i in range(first.shape[0])]
    ab = retrieval_metrics(first, second_keys, relevant, ks=(1, k))
    ba = retrieval_metrics(second, first_keys, relevant, ks=(1, k))
    return {
        f"mrr@{k}": 0.5 * (ab[f"mrr@{k}"] + ba[f"mrr@{k}"]),
        "recall@1": 0.5 * (ab["recall@1"] + ba["recall@1"]),
    }
