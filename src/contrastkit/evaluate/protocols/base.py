"""The result schema shared by every protocol, the protocol base class and input checks.

A protocol takes embeddings (float tensors (N, D)) of the splits it needs, never a model, so
one protocol serves every modality; the caller (the app, or a user's own script) encodes the
data and the baseline features (raw pixels, TF-IDF, a frozen pre-trained encoder ...) itself.
Every protocol returns a :class:`ProtocolResult`: its figures, the baseline it must beat
measured in the same call, what any selection was made on, and counts; ``to_dict()`` is the
one flat JSON-ready schema of ``results.json`` for every modality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from contrastkit._checks import check_embeddings

__all__ = ["Protocol", "ProtocolResult"]


def _json_value(value: Any) -> Any:
    """A JSON-ready copy of ``value``: tensors and arrays → lists, numpy scalars → Python."""
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        return value.item() if value.dim() == 0 else value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / inf
    return value


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    else:
        out[prefix] = _json_value(value)


@dataclass
class ProtocolResult:
    """What every protocol returns; one schema for every modality.

    Attributes:
        protocol: the registry name of the protocol (``"classification"``, ``"few_shot"`` ...).
        split: the split the figures are on (``"test"``, or ``"val"`` for model selection).
        metrics: the embeddings' figures, the headline metric first.
        baseline: the figures of the baseline the embeddings must beat, measured in the same
            call, under the same keys as ``metrics`` (a key is absent where the baseline has no
            such figure).
        baseline_name: what ``baseline`` is, in words (``"raw pixels"``, ``"TF-IDF"``,
            ``"popularity"``, ``"chance"``).
        chosen_on: what any selection (kNN's k, the probe's penalty) was made on: ``"val"`` (a
            validation part of the training data), or ``"none"`` when nothing was selected. It
            is never the split the figures are on.
        details: counts, chosen hyper-parameters, the confusion matrix as lists ...
        other_baselines: further baselines measured beside the headline one, by name, e.g.
            ``{"chance": {...}}`` (always present) and ``{"popularity": {...}}`` for ranking.

    Example:
        >>> r = ProtocolResult("classification", "test", {"knn_accuracy": 0.9},
        ...                    {"knn_accuracy": 0.8}, "raw pixels", "val", {"k": 5},
        ...                    {"chance": {"knn_accuracy": 0.1}})
        >>> r.summary_line()
        'kNN accuracy, test: 0.900 (raw pixels 0.800, chance 0.100)'
        >>> r.to_dict()["baseline.knn_accuracy"], r.to_dict()["details.k"]
        (0.8, 5)
    """

    protocol: str
    split: str
    metrics: dict[str, float]
    baseline: dict[str, float]
    baseline_name: str
    chosen_on: str
    details: dict[str, Any] = field(default_factory=dict)
    other_baselines: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-ready dict: ``protocol``, ``split``, ``chosen_on``, ``baseline_name``,
        ``metrics.<key>``, ``baseline.<key>``, ``<other baseline name>.<key>`` and
        ``details.<key>`` (nested details joined with dots; tensors and arrays as lists; NaN and
        inf as None)."""
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "split": self.split,
            "chosen_on": self.chosen_on,
            "baseline_name": self.baseline_name,
        }
        _flatten("metrics", self.metrics, out)
        _flatten("baseline", self.baseline, out)
        for name, figures in self.other_baselines.items():
            _flatten(name, figures, out)
        _flatten("details", self.details, out)
        return out

    def _line(self, key: str) -> str:
        cls = PROTOCOL_CLASSES.get(self.protocol, Protocol)
        label = cls.metric_label(key, self.details)
        ci_key = cls.interval_key(key)

        def figure(figures: dict[str, float]) -> str:
            text = f"{figures[key]:.3f}"
            if ci_key is not None and ci_key in figures and figures[ci_key] > 0:
                text += f" ± {figures[ci_key]:.3f}"
            return text

        beside = [
            f"{name} {figure(figs)}"
            for name, figs in ((self.baseline_name, self.baseline), *self.other_baselines.items())
            if key in figs
        ]
        tail = f" ({', '.join(beside)})" if beside else ""
        return f"{label}, {self.split}: {figure(self.metrics)}{tail}"

    def summary_line(self) -> str:
        """The headline figure beside its baselines, e.g.
        ``"kNN accuracy, test: 0.912 (raw pixels 0.880, chance 0.101)"``."""
        if not self.metrics:
            return f"{self.protocol}, {self.split}: no metrics"
        return self._line(next(iter(self.metrics)))

    def format(self) -> str:
        """Every figure on its own line beside its baselines (confidence intervals folded into
        their metric's line)."""
        cls = PROTOCOL_CLASSES.get(self.protocol, Protocol)
        intervals = {cls.interval_key(k) for k in self.metrics} - {None}
        return "\n".join(self._line(k) for k in self.metrics if k not in intervals)

    def __str__(self) -> str:
        return self.format()


#: name → class of every protocol defined here (filled by ``Protocol.__init_subclass__``); the
#: public registry is ``contrastkit.evaluate.protocols.PROTOCOLS``.
PROTOCOL_CLASSES: dict[str, type[Protocol]] = {}


class Protocol:
    """Base class of the evaluation protocols.

    A subclass sets ``name`` (its registry key), takes its options as keyword arguments of
    ``__init__`` and defines ``evaluate(...) -> ProtocolResult``; the inputs of ``evaluate``
    differ by protocol (labels, pairs, scores, interactions) and are named so that a caller
    can pass them as keywords. ``metric_label`` turns a metric key into words for
    :meth:`ProtocolResult.format`.
    """

    name: ClassVar[str] = ""
    #: metric key → words, for keys that are not built from a pattern
    labels: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            PROTOCOL_CLASSES[cls.name] = cls

    def __init__(self) -> None:  # a protocol without options
        pass

    def evaluate(self, *args: Any, **kwargs: Any) -> ProtocolResult:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def metric_label(cls, key: str, details: dict[str, Any]) -> str:
        """Words for the metric ``key`` (``details`` can name things, e.g. the two sides)."""
        return cls.labels.get(key, key)

    @classmethod
    def interval_key(cls, key: str) -> str | None:
        """The key of the confidence half-width printed as ``± x`` beside ``key``, if any."""
        return None

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({options})"


# ----------------------------------------------------------------------------- input checks


def check_features(x: Tensor, name: str) -> Tensor:
    """Check ``x`` is finite float (N, D) features; return it (half precision → float32)."""
    check_embeddings(x, name)
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def check_labels(
    labels: Any, n: int, name: str, rows_name: str, *, allow_negative: bool = False
) -> Tensor:
    """Check ``labels`` holds one integer (≥ 0 unless ``allow_negative``) per row of
    ``rows_name``; return int64 (CPU)."""
    if labels is None:
        raise ValueError(f"{name} is required: one integer class per row of {rows_name}.")
    t = torch.as_tensor(labels)
    if t.dim() != 1 or t.shape[0] != n or t.is_floating_point() or t.is_complex():
        raise ValueError(
            f"{name} must be an integer tensor of shape ({n},), one class per row of "
            f"{rows_name}, got dtype {t.dtype} shape {tuple(t.shape)}."
        )
    t = t.long().cpu()
    if n and not allow_negative and int(t.min()) < 0:
        raise ValueError(
            f"{name} holds negative classes; use class ids 0..C-1 (e.g. np.unique(..., "
            f"return_inverse=True) to renumber them)."
        )
    return t


def check_baseline(
    baseline: dict[str, Tensor | None], reference: dict[str, Tensor]
) -> dict[str, Tensor] | None:
    """All baseline feature tensors or none; each with the rows of its reference tensor."""
    given = {k: v for k, v in baseline.items() if v is not None}
    if not given:
        return None
    if len(given) != len(baseline):
        missing = sorted(set(baseline) - set(given))
        raise ValueError(
            f"baseline features given for {sorted(given)} but not for {missing}; give the "
            f"baseline's features for every split the protocol uses, or for none."
        )
    out = {}
    for key, x in given.items():
        x = check_features(x, key)
        rows = reference[key].shape[0]
        if x.shape[0] != rows:
            raise ValueError(
                f"{key} has {x.shape[0]} rows but the embeddings of the same split have {rows}; "
                f"baseline features must describe the same rows in the same order."
            )
        out[key] = x
    return out
