"""Repository-level checks: README commands, CI, docs examples, CLI and layering."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import contrastkit
import contrastkit.losses.functional
from contrastkit.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    commands = [b.strip() for b in _blocks("bash")]
    assert len(commands) == 2, commands
    install_run, test = commands
    assert "contrastkit" in install_run.split("&&")[-1]
    assert "pytest" in test
    assert "constraints.txt" in install_run and "constraints.txt" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines(), "`.ci/run` must run the README's test command verbatim"


def test_constraints_pin_the_cpu_torch_while_the_package_accepts_a_range():
    pins = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", pins, flags=re.M)
    pyproject = (ROOT / "pyproject.toml").read_text()
    spec = re.search(r'"torch([^"]*)"', pyproject).group(1)
    assert ">=" in spec and "==" not in spec


def test_readme_python_example_runs_as_written():
    (code,) = _blocks("python")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert float(namespace["loss"]) >= 0.0


def test_cli_help_and_commands():
    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "losses" in result.output and "info" in result.output
    result = runner.invoke(app, ["losses"])
    assert result.exit_code == 0, result.output
    for name in contrastkit.losses.functional.__all__:
        assert name in result.output
    result = runner.invoke(app, ["--version"])
    assert result.output.strip() == contrastkit.__version__


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "contrastkit"
    if not exe.exists():
        pytest.fail(f"console script missing at {exe}; install the package with pip install -e .")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "Usage" in out.stdout


def _modules():
    for info in pkgutil.walk_packages(contrastkit.__path__, "contrastkit."):
        yield importlib.import_module(info.name)


def test_docstring_examples_run():
    failures = {}
    for module in _modules():
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
        )
        if result.failed:
            failures[module.__name__] = result.failed
    assert not failures, f"doctest failures: {failures}"


def test_every_public_loss_and_miner_documents_an_example():
    import contrastkit.losses as losses
    import contrastkit.miners as miners

    for mod in (losses, miners):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if name in {"Pairs", "Triplets", "Miner"} or name.startswith("all_"):
                continue
            if name in {"to_pairs", "distance_weights"}:
                continue
            assert obj.__doc__ and "Example" in obj.__doc__, f"{mod.__name__}.{name}"
