"""Tables and interactions from the command line: a CSV table with bad values trains SCARF
and is evaluated at label fractions; an interaction CSV (with bad rows) trains a recommender,
is ranked against popularity, and ``contrastkit recommend`` serves it.

The files are small real files written here; each run is one or two epochs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from contrastkit.cli.main import app


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _common(out) -> list[str]:
    return ["--out", str(out), "--no-progress", "--set", "train.tensorboard=false"]


def _table_csv(path, n: int = 240) -> None:
    """Two informative numeric columns, a categorical one, and bad cells of every kind."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    rows = ["age,income,plan,score,churn"]
    for i in range(n):
        age = f"{30 + 10 * y[i] + rng.normal():.2f}"
        income = f"{50 + 20 * y[i] + 5 * rng.normal():.1f}"
        plan = ["basic", "pro", "max"][int(rng.integers(0, 3))] if y[i] else "basic"
        score = f"{rng.normal():.3f}"
        if i == 3:
            age = "abc"  # an unparseable number
        if i == 5:
            income = ""  # a missing number
        if i == 7:
            plan = ""  # a missing category
        if i == n - 1:
            plan = "brand-new"  # a category that may appear only outside the training rows
        rows.append(f"{age},{income},{plan},{score},{'yes' if y[i] else 'no'}")
    rows.append("41.0,60.0,pro,0.1,")  # a row without its target
    path.write_text("\n".join(rows) + "\n")


def test_a_csv_table_with_bad_values_trains_scarf_and_is_evaluated(tmp_path):
    data = tmp_path / "customers.csv"
    _table_csv(data)
    out = tmp_path / "run"
    with pytest.warns(UserWarning):
        r = _invoke(
            "train", "--recipe", "scarf", "--data", str(data), "--target", "churn",
            "--epochs", "2", "--batch-size", "32", "--width", "32", "--layers", "2",
            "--set", "eval.finetune_steps=20", "--set", "eval.label_fractions=0.1,1",
            *_common(out),
        )  # fmt: skip
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    ev = results["evaluation"]
    assert ev["protocol"] == "tabular" and ev["split"] == "test" and ev["chosen_on"] == "val"
    for key in ("accuracy@0.1", "accuracy@1", "probe@1", "finetune@1"):
        assert 0.0 <= ev[f"metrics.{key}"] <= 1.0
    # the from-scratch network, HistGradientBoosting and chance beside it
    assert ev["baseline_name"] == "from scratch"
    assert 0.0 <= ev["HistGradientBoosting.accuracy@1"] <= 1.0
    assert 0.0 <= ev["chance.accuracy@1"] <= 1.0
    # informative columns: the preprocessed table separates the classes
    assert ev["HistGradientBoosting.accuracy@1"] > 0.8
    # the bad values are counted in the run's note, not a crash
    text = "\n".join(results["summary"])
    assert "abc" in text or "unparseable" in text or "bad" in text
    page = (out / "report.html").read_text()
    assert "Test accuracy against the labels used" in page and "<img" in page
    # the exported encoder reloads without the recipe
    from contrastkit.train import load_encoder

    enc = load_encoder(out)
    assert enc.out_dim == 32


def test_a_table_without_a_target_names_the_flag(tmp_path):
    data = tmp_path / "customers.csv"
    _table_csv(data)
    r = _invoke("train", "--recipe", "scarf", "--data", str(data), *_common(tmp_path / "x"))
    assert r.exit_code == 2 and "--target" in r.output


def _interactions_csv(path, users: int = 40, items: int = 30) -> None:
    """Two taste groups (users who like even or odd items), timestamps, and bad rows."""
    rng = np.random.default_rng(1)
    rows = ["user_id,item_id,rating,timestamp"]
    for u in range(users):
        liked = [i for i in range(items) if i % 2 == u % 2]
        for i in rng.choice(liked, size=8, replace=False):
            rows.append(f"u{u},m{i},{rng.integers(3, 6)},{1_000_000 + int(rng.integers(0, 10**6))}")
    rows += [",m1,4,1000", "u1,m2,abc,1000", "u1,m3,4,1000", "u1,m3,5,2000"]  # bad, repeated
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("recipe", ["two_tower", "xsimgcl"])
def test_an_interaction_csv_trains_a_recommender_that_recommend_serves(tmp_path, recipe):
    data = tmp_path / "log.csv"
    _interactions_csv(data)
    out = tmp_path / "run"
    with pytest.warns(UserWarning):
        r = _invoke(
            "train", "--recipe", recipe, "--data", str(data), "--epochs", "2",
            "--batch-size", "64", *_common(out),
        )  # fmt: skip
    assert r.exit_code == 0, r.output
    ev = json.loads((out / "results.json").read_text())["evaluation"]
    assert ev["protocol"] == "ranking" and ev["baseline_name"] == "popularity"
    for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20"):
        assert 0.0 <= ev[f"metrics.{key}"] <= 1.0
        assert 0.0 <= ev[f"val.metrics.{key}"] <= 1.0
    assert "Recall@K" in (out / "report.html").read_text()

    r = _invoke("recommend", "--encoder", str(out), "--user", "u0", "-k", "5", "--json")
    assert r.exit_code == 0, r.output
    answer = json.loads(r.output)[0]
    assert answer["user"] == "u0" and len(answer["items"]) == 5
    ids = [h["id"] for h in answer["items"]]
    from contrastkit.index.recommend import Recommender

    seen = set(Recommender.load(out).seen_by("u0"))
    assert not seen & set(ids)  # what the user already met is left out
    r = _invoke("recommend", "--encoder", str(out), "--item", "m4", "-k", "3")
    assert r.exit_code == 0 and "like item m4" in r.output
    r = _invoke("recommend", "--encoder", str(out), "--user", "nobody")
    assert r.exit_code == 2 and "unknown user" in r.output
    r = _invoke("recommend", "--encoder", str(tmp_path / "nothing"), "--user", "u0")
    assert r.exit_code == 2 and "contrastkit train" in r.output
