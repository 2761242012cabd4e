"""The text of the command-line help pages that is generated, not written: each recipe's
``--set`` keys (from the config tree), the loss and miner toolbox with the paper each one
follows (from the docstrings), the examples' layout, and flags without a type placeholder.

Nothing here is hand-kept beside the code it describes, so the help stays true when a recipe
gains an option or a loss gains a paper reference.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from typer.core import TyperCommand, TyperGroup

__all__ = [
    "HelpCommand",
    "HelpGroup",
    "ToolboxEntry",
    "epilog",
    "examples_text",
    "plain",
    "recipe_help",
    "recipe_keys_text",
    "reference",
    "toolbox_entries",
    "toolbox_text",
]

#: the width generated text is wrapped to (the help pages' own panels wrap to the terminal)
WIDTH = 100


# ---------------------------------------------------------------------------------------------
# flags without a type placeholder


def _untyped_flags(params: list[Any]) -> list[Any]:
    """``params`` with every flag (``--x``, ``--x/--no-x``, ``-h/--help``) given an empty
    metavar: a flag takes no value, and typer would otherwise show it as ``<bool>``."""
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""
    return params


class HelpCommand(TyperCommand):
    """A command whose help shows no type placeholder for its flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class HelpGroup(TyperGroup):
    """The command group, whose help shows no type placeholder for its flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


# ---------------------------------------------------------------------------------------------
# plain text from docstrings


def plain(text: str) -> str:
    """``text`` without reST markup: ``:role:`~a.b``` → ``b``, ``:role:`x``` → ``x``,
    double back-quoted literals → their text, ``::`` → ``:``; whitespace runs → one space."""
    text = re.sub(r":\w+:`~([^`]*)`", lambda m: m.group(1).rpartition(".")[2], text)
    text = re.sub(r":\w+:`([^`]*)`", r"\1", text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = text.replace("::", ":")
    return " ".join(text.split())


def _paragraph(doc: str) -> str:
    """The first paragraph of ``doc``, as plain text; one that introduces a literal block
    (``::``) ends with a full stop instead."""
    first = inspect.cleandoc(doc).split("\n\n", 1)[0]
    first = re.sub(r"::\s*$", ".", first.strip())
    return plain(first)


_SECTION = re.compile(r"^\s*(References?):\s*(.*)$")
_HEADER = re.compile(r"^\s*[A-Z][\w ]*:\s*$")  # "Example:", "Args:", ...


def _reference_in(doc: str | None) -> str:
    """The text of the ``Reference:`` / ``References:`` section of a docstring ('' if none):
    the rest of its line and the lines after it, up to a blank line or the next section."""
    lines = inspect.cleandoc(doc or "").splitlines()
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if not m:
            continue
        parts = [m.group(2)]
        for more in lines[i + 1 :]:
            if not more.strip() or _HEADER.match(more):
                break
            parts.append(more.strip())
        return plain(" ".join(parts))
    return ""


def reference(obj: Any) -> str:
    """The paper ``obj`` follows: the ``Reference:`` section of its docstring, else that of
    its module's docstring ('' when neither has one)."""
    own = _reference_in(inspect.getdoc(obj))
    if own:
        return own
    module = inspect.getmodule(obj)
    return _reference_in(module.__doc__ if module is not None else None)


# ---------------------------------------------------------------------------------------------
# the loss and miner toolbox


@dataclass(frozen=True)
class ToolboxEntry:
    """One function of the toolbox with its ``nn.Module`` classes, summary and paper."""

    function: str
    classes: tuple[str, ...]
    summary: str
    paper: str


def _function_of(cls: type, functions: Sequence[str]) -> str | None:
    """The function a module class is the form of: its ``function`` (a
    :class:`~contrastkit.losses._base.LossModule`), else the first function of ``functions``
    its docstring names with ``:func:``."""
    fn = getattr(cls, "function", None)
    if callable(fn) and getattr(fn, "__name__", None) in functions:
        return fn.__name__
    for name in re.findall(r":func:`~?([\w.]+)`", cls.__doc__ or ""):
        name = name.rpartition(".")[2]
        if name in functions:
            return name
    return None


def toolbox_entries(module: ModuleType) -> tuple[list[ToolboxEntry], list[str]]:
    """The public functions of ``module`` (``contrastkit.losses`` or ``contrastkit.miners``),
    each with the ``nn.Module`` classes that are its module form, its summary and its paper;
    and the other public names (base classes, index tuples and the helpers that have no
    paper), in ``__all__``'s order."""
    import torch.nn as nn

    public = [(name, getattr(module, name)) for name in module.__all__]
    functions = [name for name, obj in public if inspect.isfunction(obj)]
    classes: dict[str, list[str]] = {name: [] for name in functions}
    others: list[str] = []
    for name, obj in public:
        if inspect.isclass(obj):
            fn = _function_of(obj, functions) if issubclass(obj, nn.Module) else None
            if fn is None:
                others.append(name)
            else:
                classes[fn].append(name)
    entries = []
    for name in functions:
        fn = getattr(module, name)
        paper = reference(fn)
        if not paper and not classes[name]:
            others.append(name)
            continue
        entries.append(
            ToolboxEntry(name, tuple(classes[name]), _paragraph(fn.__doc__ or ""), paper)
        )
    return entries, others


def toolbox_text() -> list[str]:
    """``contrastkit losses``'s lines: every loss, then every miner, as its function and
    ``nn.Module`` class, what it computes and the paper it follows; then the other names."""
    import contrastkit.losses as losses
    import contrastkit.miners as miners

    lines: list[str] = []
    for module, title in (
        (
            losses,
            "Losses: function (contrastkit.losses.functional), nn.Module (contrastkit.losses)",
        ),
        (miners, "Miners: function and nn.Module (contrastkit.miners)"),
    ):
        entries, others = toolbox_entries(module)
        lines += [title, ""]
        for e in entries:
            lines.append(f"  {e.function:<28}{', '.join(e.classes) or '(function only)'}")
            lines += _wrapped(e.summary, "      ")
            lines += _wrapped(f"paper: {e.paper or 'none given'}", "      ", "             ")
        if others:
            also = f"Also in {module.__name__}: {', '.join(others)}."
            lines += ["", *_wrapped(also, "  ", "    ")]
        lines.append("")
    return lines[:-1]


def _wrapped(text: str, indent: str, hanging: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent if hanging is None else hanging,
        break_on_hyphens=False,
        break_long_words=False,
    )


# ---------------------------------------------------------------------------------------------
# the recipes' options


def recipe_keys_text() -> str:
    """Train's help section listing each recipe's ``--set`` keys with their defaults,
    generated from the config tree (:func:`contrastkit.app.config.recipe_options`)."""
    from contrastkit.app.config import DATA_FILLED, recipe_options, value_text
    from contrastkit.recipes import RECIPES

    width = max(len(name) for name in RECIPES) + 2
    lines = _wrapped(
        "Recipe options: set with --set recipe.KEY=VALUE (or --set KEY=VALUE when KEY names one "
        "option), or in a config file's recipe section; contrastkit recipes NAME says what each "
        "one means.",
        "",
    )
    lines.append("")
    for name in RECIPES:
        options = recipe_options(name)
        keys = " ".join(f"{o.name}={value_text(o)}" for o in options if o.name not in DATA_FILLED)
        filled = [o.name for o in options if o.name in DATA_FILLED]
        if filled:
            keys += f" (from the data: {', '.join(filled)})"
        lines += _wrapped(keys, f"  {name:<{width}}", " " * (width + 4))
    return "\n".join(lines)


def recipe_help(names: Iterable[str], *, full: bool = False) -> list[str]:
    """``contrastkit recipes``'s lines: for each recipe, what it is, the optimiser it takes
    when ``train.optimizer``, ``train.lr`` and ``train.weight_decay`` are unset, and each
    ``--set recipe.KEY`` with its default and meaning (its first sentence, or all of it with
    ``full``)."""
    from contrastkit.app.config import recipe_node_class, recipe_options, value_text
    from contrastkit.recipes import RECIPES

    lines: list[str] = []
    for name in names:
        recipe_node_class(name)  # an unknown name: ConfigError with the valid ones
        cls = RECIPES[name][0]
        modality = getattr(cls, "modality", "image")
        lines += _wrapped(f"{name} ({modality}): {_paragraph(cls.__doc__ or '')}", "", "    ")
        optim = " ".join(f"train.{k}={v}" for k, v in getattr(cls, "optim_defaults", {}).items())
        if optim:
            lines += _wrapped(f"when unset: {optim}", "  ", "    ")
        options = recipe_options(name)
        width = max(len(f"recipe.{o.name}={value_text(o)}") for o in options) + 2
        for o in options:
            head = f"recipe.{o.name}={value_text(o)}"
            meaning = re.sub(r"\s*\(default: from the data\)$", "", plain(o.help))
            if not full:
                meaning = _first_sentence(meaning)
            lines += _wrapped(meaning or "-", f"  {head:<{width}}", " " * (width + 2))
        lines.append("")
    return lines[:-1]


def _first_sentence(text: str) -> str:
    """``text`` up to the end of its first sentence (a full stop that does not end an
    abbreviation such as e.g., followed by a space)."""
    return re.split(r"(?<=[^.]\w\.)\s+(?=[A-Za-z])", text, maxsplit=1)[0]


# ---------------------------------------------------------------------------------------------
# examples


def _rich_help() -> bool:
    """Whether typer renders the help pages with rich (else click's plain formatter)."""
    import typer.core as core

    if hasattr(core, "HAS_RICH"):
        return bool(core.HAS_RICH) and getattr(core, "DEFAULT_MARKUP_MODE", "rich") is not None
    return getattr(core, "rich", None) is not None


def epilog(*sections: str) -> str:
    """A command's epilog: ``sections`` apart by a blank line, laid out as written. Rich
    dedents all lines but the first, so the text opens with a newline; click's plain
    formatter rewraps every paragraph that does not open with its ``\\b`` marker."""
    if _rich_help():
        return "\n" + "\n\n".join(sections)
    paragraphs = [p for section in sections for p in section.split("\n\n")]
    return "\n\n".join("\b\n" + p for p in paragraphs)


def examples_text(examples: Sequence[tuple[str, str]]) -> str:
    """An ``Examples:`` section: each command line under what it does."""
    lines = ["Examples:"]
    for what, command in examples:
        lines += ["", f"  {what}", f"    {command}"]
    return "\n".join(lines)
