"""Supervised contrastive fine-tuning of a text encoder (SupCon, Khosla et al. 2020, on text).

Each labelled text is encoded twice (dropout noise, plus optional word-level text views);
every copy of every text of the same class is a positive (Gunel et al. 2021 fine-tune
pre-trained language models with this loss). The projection head is dropped at export, so
the exported encoder is the fine-tuned sentence encoder.

Example:
    >>> import torch
    >>> from contrastkit.encoders.text import SmallTextEncoder, build_vocab
    >>> from contrastkit.recipes.text_supcon import TextSupCon
    >>> texts = ["a good film", "a bad film", "great acting", "dull and long"]
    >>> recipe = TextSupCon(SmallTextEncoder(build_vocab(texts), dim=32, layers=1, heads=2))
    >>> batch = {"texts": texts, "indices": torch.arange(4), "labels": torch.tensor([1, 0, 1, 0])}
    >>> bool(recipe.step(batch).loss > 0)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.recipes._common import check_text_encoder, text_views_or_none
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["TextSupCon", "TextSupConConfig"]


@dataclass
class TextSupConConfig:
    """Hyper-parameters of :class:`TextSupCon`.

    Attributes:
        temperature: SupCon τ (0.1 in the paper).
        proj_hidden, proj_dim, proj_layers: the projection head (``proj_layers=0``: none, the
            loss acts on the encoder's embeddings directly).
        views: text-view preset for the two copies (``"none"``: dropout only).
        seed: seed of the text views.
    """

    temperature: float = 0.1
    proj_hidden: int = 512
    proj_dim: int = 128
    proj_layers: int = 2
    views: str = "none"
    seed: int = 0


class TextSupCon(Recipe):
    """Two noisy copies per text; same-label copies are positives (:func:`info_nce` ids)."""

    name = "text_supcon"
    modality = "text"
    needs_labels = True
    id_kind = "labels"
    #: AdamW at a fine-tuning rate (2e-5 at batch 64, scaled to the trainer's batch 256)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw",
        "lr": 8e-5,
        "weight_decay": 0.01,
    }

    def __init__(self, encoder: nn.Module, config: TextSupConConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or TextSupConConfig()
        check_text_encoder(encoder, "TextSupCon")
        self.encoder = encoder
        d = int(encoder.out_dim)
        self.head: nn.Module = (
            ProjectionHead(d, c.proj_hidden, c.proj_dim, c.proj_layers, bn=False)
            if c.proj_layers
            else nn.Identity()
        )
        self._views = text_views_or_none(c.views, c.seed)

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        labels = Recipe._require_labels(batch, self.name)
        texts = list(batch["texts"])
        a, b = (texts, texts) if self._views is None else self._views.pair(texts)
        ids = self.encoder.tokenize(a + b).to(labels.device)
        return {**batch, "inputs": ids, "n": len(texts)}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        return self.head(self.encoder(inputs))

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        embeddings = by_tower["views"]
        n = prepared["n"]
        labels = prepared["labels"].to(embeddings.device)
        loss = info_nce(
            embeddings,
            query_ids=labels.repeat(2),
            temperature=self.config.temperature,
            gather=self.id_kind,
        )
        return LossOutput(loss=loss, embeddings=embeddings[:n].detach())
