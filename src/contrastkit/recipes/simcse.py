"""SimCSE (Gao et al. 2021): sentence embeddings from in-batch contrast of text pairs.

Three data shapes, one recipe:

- **unsupervised** (a batch of ``texts``): every sentence is encoded twice; the only
  difference between the two passes is dropout noise, and the pair is the positive
  (optionally text views, e.g. ``views="crop"``, add word-level noise on top);
- **pairs** (``texts`` + ``positives``, e.g. NLI entailment or (query, answer) rows):
  ``positives[i]`` is the positive of ``texts[i]``; the other rows' positives are the
  in-batch negatives (sentence-transformers' MultipleNegativesRankingLoss);
- **triplets** (``texts`` + ``positives`` + ``negatives``): supervised SimCSE, each hard
  negative is a candidate for every anchor of the batch.

The loss is :func:`~contrastkit.losses.info_nce` (τ = 0.05 as in the paper) with anchors as
queries and positives as keys; ``symmetric=True`` also contrasts positives against anchors.
``loss="triplet"`` uses :func:`~contrastkit.losses.triplet_margin` on the same triplets
instead (needs negatives).

``distill > 0`` adds self-distillation from the starting model, for fine-tuning a sentence
encoder that is already good (MiniLM) on little text: a frozen copy of the encoder as it was
when the recipe was built embeds every text of the batch (eval mode, whole text, no views), and
each of the two views must also pick out its own text's frozen embedding among the batch's
(InfoNCE, the same τ). The tuned model learns from the new text while its neighbourhoods stay
those of the pre-trained one (a relational form of learning without forgetting).

The encoder is a text encoder (``tokenize(list[str]) -> (N, L)`` ids, ``forward(ids) ->
(N, D)``, see :mod:`contrastkit.encoders.text`). The paper trains unsupervised SimCSE with a
one-layer MLP over the pooled output and drops it at test time (``head=True``); for a
pre-trained sentence encoder such as MiniLM no head (the default) keeps the exported encoder's
embedding space the one that was trained.

Example:
    >>> import torch
    >>> from contrastkit.encoders.text import SmallTextEncoder, build_vocab
    >>> from contrastkit.recipes.simcse import SimCSE
    >>> texts = ["a good film", "a bad film", "the plot is thin", "great acting"]
    >>> recipe = SimCSE(SmallTextEncoder(build_vocab(texts), dim=32, layers=1, heads=2))
    >>> out = recipe.step({"texts": texts, "indices": torch.arange(4)})
    >>> bool(out.loss > 0)
    True
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.losses import info_nce, triplet_margin
from contrastkit.recipes._common import check_text_encoder, text_views_or_none
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["SimCSE", "SimCSEConfig"]


@dataclass
class SimCSEConfig:
    """SimCSE hyper-parameters.

    Attributes:
        temperature: InfoNCE τ (0.05 in the paper).
        symmetric: also contrast positives → anchors (both directions averaged).
        head: train through a Linear + Tanh head on the pooled output (dropped at export).
        views: text-view preset applied to each copy before encoding (``"none"``: dropout
            is the only noise, as in the paper; ``"span"``: the two copies are the two sides
            of a random cut of the text, for documents whose dropout copies are too easy to
            match; ``"passages"``: the same for texts of 32+ words only, sentences keep
            dropout; ``"ict"``: ``"span"`` where 90% of the pairs also lose the words their
            sides share, so a from-scratch encoder must learn which words go together; see
            :func:`contrastkit.augment.text.text_views`).
        loss: ``"info_nce"`` or ``"triplet"`` (margin loss on (anchor, positive, negative)).
        margin: triplet margin (cosine distance).
        seed: seed of the text views.
        distill: weight of the self-distillation term (0: none); see the module docstring.
            Costs one forward pass of the frozen copy per step, and the copy's weights in
            memory and in checkpoints (it is needed to resume).
    """

    temperature: float = 0.05
    symmetric: bool = False
    head: bool = False
    views: str = "none"
    loss: str = "info_nce"
    margin: float = 0.2
    seed: int = 0
    distill: float = 0.0


class SimCSE(Recipe):
    """Text encoder + optional head + dropout/pair positives + InfoNCE."""

    name = "simcse"
    modality = "text"
    #: AdamW at SimCSE's BERT-base rate (3e-5 at batch 64); scaled by batch / 256 by the trainer
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",
        "lr": 1.2e-4,
        "weight_decay": 0.01,
    }
    id_kind = "instances"

    def __init__(self, encoder: nn.Module, config: SimCSEConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or SimCSEConfig()
        if c.loss not in ("info_nce", "triplet"):
            raise ValueError(f"SimCSE loss must be 'info_nce' or 'triplet', got {c.loss!r}.")
        if not (math.isfinite(c.distill) and c.distill >= 0):
            raise ValueError(f"distill must be a finite weight >= 0, got {c.distill}.")
        if c.distill > 0 and c.head:
            raise ValueError(
                "distill compares the encoder's output with its frozen copy's, but head=True "
                "trains through a new head; use head=False with distill."
            )
        check_text_encoder(encoder, "SimCSE")
        self.encoder = encoder
        #: frozen copy of the starting encoder (``distill > 0``), always in eval mode
        self.teacher: nn.Module | None = None
        if c.distill > 0:
            self.teacher = copy.deepcopy(encoder).requires_grad_(False).eval()
        d = int(encoder.out_dim)
        self.head = nn.Sequential(nn.Linear(d, d), nn.Tanh()) if c.head else nn.Identity()
        self._views = text_views_or_none(c.views, c.seed)

    def train(self, mode: bool = True) -> SimCSE:
        """Train/eval mode for the encoder and head; the frozen teacher stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts: list[str] = list(batch["texts"])
        n = len(texts)
        positives = batch.get("positives")
        negatives = batch.get("negatives")
        if positives is None:  # unsupervised: the same sentences twice, dropout differs
            if negatives is not None:
                raise ValueError("SimCSE got negatives without positives; give both columns.")
            if self._views is None:
                rows = texts + texts
            else:  # two views of every text (e.g. the two sides of a cut, views="span")
                first, second = self._views.pair(texts)
                rows = first + second
        else:
            rows = texts + list(positives) + (list(negatives) if negatives is not None else [])
        if self.config.loss == "triplet" and negatives is None:
            raise ValueError(
                "loss='triplet' needs (anchor, positive, negative) rows; give a negative "
                "column or use loss='info_nce'."
            )
        device = next(self.encoder.parameters()).device
        ids = self.encoder.tokenize(rows).to(device)
        out = {**batch, "inputs": ids, "n": n, "has_negatives": negatives is not None}
        if self.teacher is not None:
            with torch.no_grad():
                out["teacher"] = self.teacher(self.teacher.tokenize(texts).to(device)).float()
        return out

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.head(self.encoder(inputs))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        embeddings = by_tower["views"]
        n = prepared["n"]
        anchor, positive = embeddings[:n], embeddings[n : 2 * n]
        negative = embeddings[2 * n :] if prepared["has_negatives"] else None
        c = self.config
        ids = torch.arange(n, device=embeddings.device)
        if c.loss == "triplet":  # the row's own (anchor, positive, negative), cosine distance
            loss = triplet_margin(
                anchor.float(),
                torch.cat([positive, negative]).float(),
                query_ids=ids,
                key_ids=torch.cat([ids, -1 - ids]),
                triplets=(ids, ids, ids + n),
                margin=c.margin,
                distance="cosine",
            )
        else:
            loss = info_nce(
                anchor,
                positive,
                query_ids=ids,
                temperature=c.temperature,
                negatives=negative,
                symmetric=c.symmetric,
                gather=self.id_kind,
            )
        metrics: dict[str, float] = {}
        if self.teacher is not None:
            teacher = prepared["teacher"]
            distill = 0.5 * sum(
                info_nce(
                    view, teacher, query_ids=ids, temperature=c.temperature, gather=self.id_kind
                )
                for view in (anchor, positive)
            )
            metrics["distill"] = float(distill.detach())
            loss = loss + c.distill * distill
        return LossOutput(loss=loss, embeddings=anchor.detach(), metrics=metrics)
