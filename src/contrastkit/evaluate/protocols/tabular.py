"""Tabular protocol: classification at 1%, 10% and 100% of the training labels, by a linear
probe on the frozen embeddings and by fine-tuning, beside the same network trained from
scratch on the same labels, HistGradientBoosting and the majority class.

Unlike the embedding protocols, this one takes the encoder itself: fine-tuning and the
from-scratch baseline train networks. The figures come from
:func:`contrastkit.evaluate.tabular.label_fraction_eval`; every choice (the probe's C, early
stopping, HGB's settings, and which of probe and fine-tune is the headline at each fraction)
is made on the validation rows, never the test rows.

Metrics (test accuracy): ``accuracy@<f>`` (the better of probe and fine-tune by validation
accuracy, ``details.chosen@<f>`` says which), ``probe@<f>``, ``finetune@<f>``. Baselines:
``from scratch`` (the same architecture, random initialisation, trained exactly like the
fine-tune), ``HistGradientBoosting`` and ``chance`` (the training majority class), under the
``accuracy@<f>`` keys.

Example:
    >>> import torch
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> def rows(n):
    ...     y = torch.arange(n) % 2
    ...     return torch.randn(n, 4, generator=g) + 3 * y[:, None], y
    >>> (tx, ty), (vx, vy), (sx, sy) = rows(80), rows(40), rows(40)
    >>> def make():
    ...     enc = nn.Sequential(nn.Linear(4, 8), nn.ReLU()); enc.out_dim = 8; return enc
    >>> from contrastkit.evaluate.tabular import FinetuneConfig
    >>> p = TabularProtocol(fractions=(1.0,), finetune=FinetuneConfig(max_steps=50))
    >>> r = p.evaluate(make(), make, tx, ty, vx, vy, sx, sy)
    >>> r.metrics["accuracy@1"] > 0.9, r.baseline_name
    (True, 'from scratch')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from contrastkit.evaluate.protocols.base import Protocol, ProtocolResult

__all__ = ["TabularProtocol"]


class TabularProtocol(Protocol):
    """Label-fraction classification of a table (see the module's notes).

    Args:
        fractions: fractions of the training labels (stratified subsets, seeded).
        seed: the seed of the subsets and of every network trained.
        finetune: how fine-tuning and the from-scratch baseline train
            (:class:`~contrastkit.evaluate.tabular.FinetuneConfig`; None: its defaults).
    """

    name = "tabular"

    def __init__(
        self,
        *,
        fractions: Sequence[float] = (0.01, 0.1, 1.0),
        seed: int = 0,
        finetune: Any = None,
    ) -> None:
        self.fractions = tuple(float(f) for f in fractions)
        self.seed = int(seed)
        self.finetune = finetune

    @classmethod
    def metric_label(cls, key: str, details: dict[str, Any]) -> str:
        method, _, f = key.partition("@")
        words = {
            "accuracy": "accuracy (probe or fine-tune, chosen on validation)",
            "probe": "linear-probe accuracy",
            "finetune": "fine-tune accuracy",
        }.get(method, method)
        return f"{words}, {100 * float(f):g}% of the labels" if f else words

    def evaluate(
        self,
        encoder: nn.Module,
        encoder_factory: Callable[[], nn.Module],
        train_x: Tensor,
        train_y: Tensor,
        val_x: Tensor,
        val_y: Tensor,
        test_x: Tensor,
        test_y: Tensor,
        *,
        n_numeric: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> ProtocolResult:
        """Evaluate a pre-trained ``encoder``.

        Args:
            encoder: the trained encoder (never modified: fine-tuning trains a copy).
            encoder_factory: ``() → nn.Module``, the same architecture freshly initialised
                (the from-scratch baseline).
            train_x, val_x, test_x: (N_s, F) preprocessed rows; train_y, val_y, test_y:
                (N_s,) classes 0..C−1.
            n_numeric: leading numeric columns (the rest are category codes, which HGB
                treats as categorical); None: all numeric.
            details: extra facts to keep (counts, the table's name).
        """
        from contrastkit.evaluate.tabular import label_fraction_eval, select_on_validation

        r = label_fraction_eval(
            train_x, train_y, val_x, val_y, test_x, test_y,
            encoder_factory=encoder_factory, pretrained_encoder=encoder,
            fractions=self.fractions, seed=self.seed, n_numeric=n_numeric,
            finetune=self.finetune,
        )  # fmt: skip
        metrics: dict[str, float] = {}
        scratch: dict[str, float] = {}
        hgb: dict[str, float] = {}
        chance: dict[str, float] = {}
        info: dict[str, Any] = dict(details or {})
        curves: dict[str, dict[str, float]] = {
            "probe": {}, "fine-tune": {}, "from scratch": {}, "HistGradientBoosting": {},
            "majority class": {},
        }  # fmt: skip
        for f in self.fractions:
            key = f"{f:g}"
            chosen, acc = select_on_validation(r, f)
            metrics[f"accuracy@{key}"] = acc
            info[f"chosen@{key}"] = chosen
            info[f"labelled@{key}"] = int(r[f"labelled@{key}"])
            info[f"probe_C@{key}"] = r.get(f"probe@{key}:C")
            for m in ("probe", "finetune", "scratch", "hgb"):
                if f"{m}@{key}:val" in r:
                    info[f"val_accuracy.{m}@{key}"] = r[f"{m}@{key}:val"]
            scratch[f"accuracy@{key}"] = r[f"scratch@{key}"]
            hgb[f"accuracy@{key}"] = r[f"hgb@{key}"]
            chance[f"accuracy@{key}"] = r["majority"]
            curves["probe"][key] = r[f"probe@{key}"]
            curves["fine-tune"][key] = r[f"finetune@{key}"]
            curves["from scratch"][key] = r[f"scratch@{key}"]
            curves["HistGradientBoosting"][key] = r[f"hgb@{key}"]
            curves["majority class"][key] = r["majority"]
        for f in self.fractions:
            key = f"{f:g}"
            metrics[f"probe@{key}"] = r[f"probe@{key}"]
            metrics[f"finetune@{key}"] = r[f"finetune@{key}"]
        info["curves"] = curves
        return ProtocolResult(
            self.name,
            "test",
            metrics,
            scratch,
            "from scratch",
            "val",
            info,
            {"HistGradientBoosting": hgb, "chance": chance},
        )

    def evaluate_encoder(
        self, encoder: nn.Module, train: Any, val: Any, test: Any, *, device: Any = None
    ) -> ProtocolResult:
        """:meth:`evaluate` on three :class:`~contrastkit.data.tables.TableSet` parts; the
        from-scratch network is rebuilt from the encoder's registry ``config``."""
        import copy

        from contrastkit.encoders import build_encoder

        name = {"TabularMLP": "tabular_mlp", "TabularResNet": "tabular_resnet"}.get(
            type(encoder).__name__
        )
        config = dict(getattr(encoder, "config", {}))

        def factory() -> nn.Module:
            if name is None:  # not a registered tabular encoder: re-initialise a copy
                fresh = copy.deepcopy(encoder)
                for m in fresh.modules():
                    if hasattr(m, "reset_parameters"):
                        m.reset_parameters()
                return fresh
            return build_encoder(name, **config)

        enc = copy.deepcopy(encoder).cpu().eval()
        return self.evaluate(
            enc, factory, train.x, train.y, val.x, val.y, test.x, test.y,
            n_numeric=train.n_numeric,
            details={"table": getattr(train, "name", ""),
                     "rows": [len(train), len(val), len(test)]},
        )  # fmt: skip
