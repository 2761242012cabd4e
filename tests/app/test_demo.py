"""The demo and the transformed test: the figure that shows what contrastive learning buys.

The fast tests check the wiring only (an encoder trained for an epoch or two is not expected
to beat raw pixels); the slow test runs the demo as shipped and checks its point.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

import contrastkit.app.experiment as experiment
from contrastkit.app.config import RunConfig
from contrastkit.app.experiment import demo_config, run_experiment
from contrastkit.cli.main import app
from contrastkit.evaluate.robustness import TRANSFORMED_SPLIT

#: a raw key in a line meant for a person (``knn_acc``, ``metrics.knn_accuracy``)
RAW_KEY = re.compile(r"\b\w+_\w+\b|\bmetrics\.")


def _tiny(tmp_path, transformed: bool) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"name": "digits"},
            "model": {"encoder": "small_cnn", "width": 0.0625},
            "train": {
                "epochs": 1,
                "batch_size": 128,
                "monitor_every": 0,
                "progress": False,
                "out_dir": str(tmp_path),
            },
            "eval": {"linear_probe": False, "report": False, "transformed_test": transformed},
        }
    )


def test_transformed_test_adds_its_figure_to_results_and_summary(tmp_path):
    res = run_experiment(_tiny(tmp_path / "on", True))
    ev = res["evaluation"]
    assert ev["transformed_test.split"] == TRANSFORMED_SPLIT
    assert ev["transformed_test.baseline_name"] == "raw pixels"
    assert ev["transformed_test.chosen_on"] == "val"
    for key in ("metrics", "baseline", "chance"):
        assert 0.0 <= ev[f"transformed_test.{key}.knn_accuracy"] <= 1.0
    assert ev["transformed_test.details.n_test"] == res["data"]["test"]
    assert ev["transformed_test.details.n_val"] == res["data"]["val"]
    assert ev["transformed_test.details.transform_seeds.test"] == 2
    # the clean headline first, the transformed figure right after it, in words
    assert res["summary"][0].startswith("kNN accuracy, test: ")
    line = res["summary"][1]
    assert line.startswith(f"kNN accuracy, {TRANSFORMED_SPLIT}: ")
    assert "raw pixels" in line and "chance" in line
    assert not RAW_KEY.search(line)
    saved = json.loads((tmp_path / "on" / "results.json").read_text())
    assert saved["evaluation"]["transformed_test.metrics.knn_accuracy"] == pytest.approx(
        ev["transformed_test.metrics.knn_accuracy"]
    )

    off = run_experiment(_tiny(tmp_path / "off", False))
    assert not any(k.startswith("transformed_test.") for k in off["evaluation"])
    assert not any(TRANSFORMED_SPLIT in line for line in off["summary"])


def test_transformed_test_needs_labelled_test_images(tmp_path, capsys):
    from contrastkit.app.pipeline import MODALITIES, evaluate_transformed

    on = _tiny(tmp_path, True)
    for modality, test in ((MODALITIES["text"], None), (MODALITIES["image"], None)):
        assert evaluate_transformed(on, modality, None, None, None, test) is None
        assert "transformed test is skipped" in capsys.readouterr().err
    off = _tiny(tmp_path, False)
    assert evaluate_transformed(off, MODALITIES["image"], None, None, None, None) is None
    assert capsys.readouterr().err == ""


def test_demo_config_is_the_shipped_demo():
    cfg = demo_config("runs/demo")
    assert cfg.eval.transformed_test is True
    assert (cfg.recipe.name, cfg.data.name, cfg.model.encoder) == ("simclr", "digits", "small_cnn")
    # the views must make the transformed test's invariance learnable: crops move and zoom
    assert cfg.recipe.crop_scale[0] < 1.0 and cfg.recipe.flip == 0.0


def _fast_demo(monkeypatch):
    """The demo command with the shipped config but one map in the report (UMAP's compile is
    the slow part of a short run)."""

    def quick(out_dir: str = "runs/demo", epochs: int = 100) -> RunConfig:
        cfg = demo_config(out_dir, epochs)
        cfg.eval.report_maps = ("tsne",)
        return cfg

    monkeypatch.setattr(experiment, "demo_config", quick)


def test_demo_prints_the_transformed_figure_first_then_the_clean_one(tmp_path, monkeypatch):
    _fast_demo(monkeypatch)
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--out", str(out), "--epochs", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("contrastkit demo: "))
    assert (
        lines[head].startswith("contrastkit demo: SimCLR, small_cnn") and "1 epochs" in lines[head]
    )
    # the point first, then the clean figure (progress notes, if any, come before)
    figures = [ln for ln in lines[head + 1 :] if ln.startswith("kNN accuracy")]
    assert figures[0].startswith(f"kNN accuracy, {TRANSFORMED_SPLIT}: ")
    assert figures[1].startswith("kNN accuracy, test: ")
    for line in figures[:2]:
        assert "(raw pixels " in line and "chance " in line
    results = json.loads((out / "results.json").read_text())
    ev = results["evaluation"]
    # the honest note appears exactly when raw pixels win on the clean test digits
    raw_wins = ev["baseline.knn_accuracy"] >= ev["metrics.knn_accuracy"]
    assert ("raw pixels win on the clean test digits" in r.output) == raw_wins
    shown = [ln for ln in lines[head + 1 :] if not ln.startswith(("report: ", "encoder: "))]
    assert max(len(ln) for ln in shown) <= 100, shown  # paths aside, the lines fit a terminal
    timing = next(ln for ln in lines if ln.startswith("trained in "))
    assert re.fullmatch(
        r"trained in \d+ s \(1 epochs, [\d.]+ s each\); evaluated and reported in \d+ s; "
        r"total \d+ s",
        timing,
    )
    assert any(ln.startswith("report: ") for ln in lines)
    # a person reads the summary and the report's metrics table: words, not raw keys
    for line in results["summary"]:
        assert not RAW_KEY.search(line.split(": ", 1)[0]), line
    html = (out / "report.html").read_text()
    table = html.split("<h2>Metrics</h2>", 1)[1].split("</table>", 1)[0]
    names = re.findall(r"<tr><th>(.*?)</th>", table)
    assert f"kNN accuracy, {TRANSFORMED_SPLIT}" in names and "kNN accuracy, test" in names
    assert not [n for n in names if RAW_KEY.search(n)]


@pytest.mark.slow
def test_demo_encoder_beats_raw_pixels_on_the_transformed_test(tmp_path):
    """The demo as shipped (about two minutes on two cores): its point must hold."""
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--no-progress"])
    assert r.exit_code == 0, r.output
    ev = json.loads((tmp_path / "results.json").read_text())["evaluation"]
    enc = ev["transformed_test.metrics.knn_accuracy"]
    raw = ev["transformed_test.baseline.knn_accuracy"]
    assert enc >= raw + 0.1, r.output
    assert enc > 0.8 and ev["metrics.knn_accuracy"] > 0.9, r.output
