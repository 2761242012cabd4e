"""The module form of a loss function, made from the function itself.

Every loss is first a pure function, then an ``nn.Module`` whose options are exactly the
function's (DESIGN.md, principle 1). :class:`LossModule` makes the second from the first, as
pytorch-metric-learning's ``BaseMetricLossFunction`` carries the shared options::

    class BarlowTwinsLoss(LossModule, function=barlow_twins, check=_check_options, positional=1):
        "The call and a runnable example: nothing else."

The subclass gets an ``__init__`` whose parameters are the function's keyword options (same
names, same defaults; the first ``positional`` may also be given by position), checked once by
the function's own option check and kept as attributes, and a ``forward(*tensors, **inputs)``
that calls the function with the tensors, the per-call keyword ``inputs`` (ids, negatives,
mined indices) and the options. ``extra_options`` adds the few that only a module can have (a
learnable temperature, an attached miner); a subclass receives them in :meth:`_store`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.losses._gather import resolve_gather

__all__ = ["LossModule", "TemperatureLossModule"]


def _no_check(**_: object) -> None:
    return None


class LossModule(nn.Module):
    """Holds the options of ``function`` and calls it on the tensors given to ``forward``.

    Class keywords: ``function`` (the loss function), ``check`` (its option check, called with
    every option by keyword), ``inputs`` (its keyword-only parameters that are per-call inputs,
    not options) and ``positional`` (how many leading options may be given by position).
    """

    function: ClassVar[Callable[..., Any]]
    option_names: ClassVar[tuple[str, ...]] = ()
    extra_options: ClassVar[dict[str, Any]] = {}
    _check: ClassVar[Callable[..., None]]
    _signature: ClassVar[inspect.Signature]

    def __init_subclass__(
        cls,
        *,
        function: Callable[..., Any] | None = None,
        check: Callable[..., None] | None = None,
        inputs: tuple[str, ...] = (),
        positional: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if function is None:  # an intermediate base (learnable temperature, miner)
            return
        params = inspect.signature(function).parameters
        unknown = set(inputs) - set(params)
        if unknown:
            raise TypeError(f"{function.__name__} has no parameters {sorted(unknown)}.")
        options = [p for p in params.values() if p.kind is p.KEYWORD_ONLY and p.name not in inputs]
        P = inspect.Parameter
        init = [
            p.replace(kind=P.POSITIONAL_OR_KEYWORD if i < positional else P.KEYWORD_ONLY)
            for i, p in enumerate(options)
        ] + [P(name, P.KEYWORD_ONLY, default=d) for name, d in cls.extra_options.items()]
        cls.function = staticmethod(function)
        cls._check = staticmethod(check or _no_check)
        cls.option_names = tuple(p.name for p in options)
        cls._signature = inspect.Signature(init)

        def __init__(self: LossModule, *args: Any, **kwargs: Any) -> None:
            LossModule.__init__(self, *args, **kwargs)

        __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [P("self", P.POSITIONAL_OR_KEYWORD), *init]
        )
        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        __init__.__doc__ = f"Takes the options of :func:`{function.__name__}`."
        cls.__init__ = __init__  # type: ignore[method-assign]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        cls = type(self)
        try:
            bound = cls._signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(
                f"{cls.__name__}: {err}; its options are {list(cls._signature.parameters)}."
            ) from None
        bound.apply_defaults()
        options = dict(bound.arguments)
        extras = {name: options.pop(name) for name in cls.extra_options}
        if "gather" in options:
            options["gather"] = resolve_gather(options["gather"], cls.function.__name__, 4)
        self._store(options, **extras)

    def _store(self, options: dict[str, Any], **extras: Any) -> None:
        """Check the options with the function's own check and keep each as an attribute (an
        option the class exposes as a property, a learnable temperature, is the subclass's)."""
        cls = type(self)
        cls._check(**options)
        for name, value in options.items():
            if not isinstance(getattr(cls, name, None), property):
                setattr(self, name, value)

    def options(self) -> dict[str, Any]:
        """The function's options as this module holds them (a learnable one as a tensor)."""
        return {name: getattr(self, name) for name in self.option_names}

    def forward(self, *tensors: Any, **inputs: Any) -> Any:
        clash = [name for name in inputs if name in self.option_names]
        if clash:
            raise TypeError(
                f"{type(self).__name__}: {clash} are options, set when the module is built "
                f"({type(self).__name__}({clash[0]}=...)); forward takes the tensors and the "
                f"per-call inputs of {self.function.__name__}."
            )
        return self.function(*tensors, **inputs, **self.options())

    def extra_repr(self) -> str:
        def show(v: Any) -> str:
            if isinstance(v, Tensor) and v.numel() == 1:
                return f"{float(v.detach()):.6g}"
            return repr(v)

        return ", ".join(f"{k}={show(v)}" for k, v in self.options().items())


class TemperatureLossModule(LossModule):
    """A :class:`LossModule` whose ``temperature`` is kept as its logarithm: a buffer, or a
    learnable parameter with ``learn_temperature=True`` (CLIP)."""

    extra_options: ClassVar[dict[str, Any]] = {"learn_temperature": False}
    log_temperature: Tensor

    def _store(self, options: dict[str, Any], *, learn_temperature: bool) -> None:
        temperature = options["temperature"]
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        super()._store(options)
        log_t = torch.tensor(float(temperature)).log()
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self.learn_temperature = learn_temperature

    @property
    def temperature(self) -> Tensor:
        return self.log_temperature.exp()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, learn_temperature={self.learn_temperature}"
