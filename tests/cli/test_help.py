"""The help pages (issue 17): ``-h`` everywhere, no ``<bool>`` placeholder, train's option
groups, examples that parse and run, each recipe's ``--set`` keys, and ``contrastkit losses``
in plain text with every loss's module class and paper."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import shlex

import pytest
import typer
from torch import nn
from typer.testing import CliRunner

import contrastkit.losses as losses_pkg
import contrastkit.miners as miners_pkg
from contrastkit.app.config import DATA_FILLED, recipe_options, value_text
from contrastkit.cli._help import plain
from contrastkit.cli.main import EXAMPLES, app
from contrastkit.recipes import RECIPES

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_YEAR = re.compile(r"\b(19|20)\d\d\b")


def _invoke(*args: str):
    """Run the CLI with a wide terminal, so that rich neither wraps nor cuts lines."""
    result = CliRunner(env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"}).invoke(app, list(args))
    return result, _ANSI.sub("", result.output)


def _commands() -> list[str]:
    return list(typer.main.get_command(app).commands)


def test_every_command_has_examples_or_is_info():
    assert set(_commands()) - set(EXAMPLES) == {"info"}
    assert set(EXAMPLES) <= set(_commands())


@pytest.mark.parametrize("command", [None, *_commands()])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_flag_works_and_shows_no_bool_placeholder(command, flag):
    args = [flag] if command is None else [command, flag]
    result, out = _invoke(*args)
    assert result.exit_code == 0, out
    assert "Usage: contrastkit" in out
    assert "<bool>" not in out
    assert "-h" in out  # the short form is listed beside --help


def _panel(out: str, title: str) -> str:
    """The text of the help panel ``title`` (between its top and bottom border)."""
    m = re.search(rf"╭─ {re.escape(title)} ─+╮\n(.*?)\n╰", out, re.S)
    assert m, f"no panel {title!r} in:\n{out}"
    return m.group(1)


def test_train_help_groups_the_options():
    result, out = _invoke("train", "-h")
    assert result.exit_code == 0, out
    run = _panel(out, "Run")
    for flag in ("--config", "--set", "--resume", "--overwrite", "--print-config"):
        assert re.search(rf"│ {flag}\b", run), flag
    assert "--epochs" not in run
    assert "--data " in _panel(out, "Data")
    assert "--encoder " in _panel(out, "Model")
    assert "--recipe " in _panel(out, "Recipe")
    assert "--epochs " in _panel(out, "Train") and "--lr " in _panel(out, "Train")
    assert "--linear-probe" in _panel(out, "Eval")
    options = _panel(out, "Options")  # only the help flag is left outside a group
    assert re.findall(r"│ (--[\w-]+)", options) == ["--help"]


@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_help_shows_the_commands_examples(command):
    result, out = _invoke(command, "-h")
    assert result.exit_code == 0, out
    assert "Examples:" in out
    for what, line in EXAMPLES[command]:
        assert what in out
        assert line in out


def _recipe_blocks(out: str) -> dict[str, str]:
    """``{recipe: its text}`` from the Recipe options section of train's help."""
    section = out.split("Recipe options:", 1)[1]
    blocks: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        m = re.match(r"^ {2,3}(\w+)\s{2,}(.*)$", line)
        if m and m.group(1) in RECIPES:
            current = m.group(1)
            blocks[current] = m.group(2).strip()
        elif current and line.strip():
            blocks[current] += " " + line.strip()
    return blocks


def test_train_help_lists_every_recipes_set_keys_with_defaults():
    result, out = _invoke("train", "-h")
    assert result.exit_code == 0, out
    assert "--set recipe.KEY=VALUE" in out.split("Recipe options:", 1)[1]
    blocks = _recipe_blocks(out)
    assert list(blocks) == list(RECIPES)
    for name, (_, config_cls) in RECIPES.items():
        text = blocks[name]
        shown = set(re.findall(r"(\w+)=", text))
        filled = re.search(r"\(from the data: ([\w, ]+)\)", text)
        shown |= set(filled.group(1).split(", ")) if filled else set()
        declared = {f.name for f in dataclasses.fields(config_cls)}
        assert shown == declared, name
        for option in recipe_options(name):
            if option.name not in DATA_FILLED:
                assert f"{option.name}={value_text(option)}" in text.split(), (name, option.key)


def test_recipes_command_gives_each_keys_default_and_meaning():
    result, out = _invoke("recipes", "moco", "simcse")
    assert result.exit_code == 0, out
    assert out.startswith("moco (image): ") and "\nsimcse (text): " in out
    assert "recipe.queue_size=16384" in out and "negatives kept" in out
    assert "recipe.temperature=0.05" in out and "0.05 in the paper" in out
    assert "train.lr=0.00012" in out  # SimCSE's optimiser defaults
    bad, err = _invoke("recipes", "mocco")
    assert bad.exit_code == 2 and "did you mean 'moco'" in err.lower()


def _parse(command: str, args: list[str]) -> None:
    """Parse ``args`` for ``command`` as the CLI would (types, required options, choices),
    without running it."""
    group = typer.main.get_command(app)
    cmd = group.commands[command]
    while hasattr(cmd, "commands"):  # a sub-group (contrastkit anomaly fit/score)
        command, args = args[0], args[1:]
        cmd = cmd.commands[command]
    cmd.make_context(command, list(args))


@pytest.mark.parametrize(
    ("command", "line"), [(c, line) for c, pairs in EXAMPLES.items() for _, line in pairs]
)
def test_every_example_parses(command, line):
    argv = shlex.split(line)
    assert argv[:2] == ["contrastkit", command]
    _parse(command, argv[2:])


def test_train_examples_give_the_options_they_say(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, out = _invoke("train", "--recipe", "byol", "--epochs", "100", "--print-config")
    assert result.exit_code == 0, out
    (tmp_path / "run.json").write_text(out)  # what the --config example reads
    for _, line in EXAMPLES["train"]:
        argv = shlex.split(line)[2:]
        result, out = _invoke(
            "train", *argv, *(["--print-config"] * ("--print-config" not in argv))
        )
        assert result.exit_code == 0, (line, out)
        cfg = json.loads(out)
        given = dict(zip(argv, argv[1:]))
        for flag, node, key in (
            ("--data", "data", "name"),
            ("--recipe", "recipe", "name"),
            ("--encoder", "model", "encoder"),
            ("--out", "train", "out_dir"),
        ):
            if flag in given:
                assert cfg[node][key] == given[flag], (line, flag)
        if "--epochs" in given:
            assert cfg["train"]["epochs"] == int(given["--epochs"])
        for i, arg in enumerate(argv):
            if arg == "--set":
                key, _, value = argv[i + 1].partition("=")
                node, _, name = key.partition(".")
                got = cfg[node][name]
                shown = str(got).lower() if isinstance(got, bool) else str(got)
                assert shown == value, (line, key)


def test_losses_prints_plain_text_with_every_class_and_a_paper():
    result, out = _invoke("losses")
    assert result.exit_code == 0, out
    for markup in ("``", "::", ":class:", ":func:", ":mod:"):
        assert markup not in out, markup
    entries: dict[str, list[str]] = {}
    head = None
    for line in out.splitlines():
        m = re.match(r"^  (\w+) {2,}(.+)$", line)
        if m:
            head = m.group(1)
            entries[head] = [m.group(2)]
        elif head and line.startswith("      "):
            entries[head].append(line.strip())
        else:
            head = None
    for name, lines in entries.items():
        paper = " ".join(lines).partition("paper: ")[2]
        assert _YEAR.search(paper), (name, lines)
    for pkg in (losses_pkg, miners_pkg):
        for name in pkg.__all__:
            obj = getattr(pkg, name)
            if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__doc__:
                if ":func:" not in obj.__doc__ and getattr(obj, "function", None) is None:
                    continue  # a base class (Miner): named on the "Also in" line
                owners = [f for f, lines in entries.items() if name in lines[0].split(", ")]
                assert owners, f"{name} is not listed with its function"
            fn = getattr(obj, "function", None)
            if fn is not None:
                assert name in entries[fn.__name__][0].split(", ")
    also = out.partition("Also in contrastkit.losses:")[2].partition("\n\n")[0]
    for name in losses_pkg.__all__:  # every function: an entry, or a helper named on one line
        if inspect.isfunction(getattr(losses_pkg, name)):
            assert name in entries or re.search(rf"\b{name}\b", also), name


def test_plain_removes_rest_markup():
    text = "Uses :func:`~contrastkit.losses.info_nce` and :class:`Triplets`: ``d(a, p)``::"
    assert plain(text) == "Uses info_nce and Triplets: d(a, p):"


def test_recipes_without_names_lists_every_recipe_briefly():
    result, out = _invoke("recipes")
    assert result.exit_code == 0, out
    heads = re.findall(
        r"^(\w+) \((image|text|image_text|graph|node|table|interactions|audio)\): ", out, re.M
    )
    assert [name for name, _ in heads] == list(RECIPES)
    assert "recipe.proj_bn=true" in out and "batch norm after the head's hidden layer." in out
    assert "Fashion-MNIST" not in out  # the rest of proj_bn's meaning: only with its name


def test_epilog_keeps_its_layout_without_rich(monkeypatch):
    import contrastkit.cli._help as help_mod

    text = help_mod.examples_text([("What it does:", "contrastkit losses")])
    monkeypatch.setattr(help_mod, "_rich_help", lambda: False)
    plain_form = help_mod.epilog(text, "Second section:\n  line")
    assert all(p.startswith("\b\n") for p in plain_form.split("\n\n"))  # click keeps the lines
    monkeypatch.setattr(help_mod, "_rich_help", lambda: True)
    assert help_mod.epilog(text).startswith("\nExamples:\n")  # rich dedents all but line one
