"""``contrastkit evaluate``: stages on stderr, the figures in words, which k the kNN used and
why (never near the bank's size), where the report went, JSON only with --json; every choice
made on validation rows, never on the test split."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from contrastkit.cli.main import app
from contrastkit.evaluate.protocols.classification import ClassificationProtocol, knn_k_cap


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """A 240-image labelled folder (3 classes; 20% held out as its test split) and an
    exported small CNN."""
    from PIL import Image

    from contrastkit.encoders import SmallCNN
    from contrastkit.train import export_encoder

    tmp = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp / "shapes" / f"c{c}").mkdir(parents=True)
        for i in range(80):
            pixels = (rng.random((8, 8)) * 90 + c * 80).astype("uint8")
            Image.fromarray(pixels).save(tmp / "shapes" / f"c{c}" / f"{i}.png")
    torch.manual_seed(0)
    export_encoder(SmallCNN(in_channels=1, width=4, stages=2), tmp / "enc", "small_cnn")
    return {"data": str(tmp / "shapes"), "encoder": str(tmp / "enc")}


def _evaluate(small_set, *args: str):
    argv = ["evaluate", "--encoder", small_set["encoder"], "--data", small_set["data"], *args]
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 0, r.output
    return r


def test_words_first_k_well_below_the_set_size_and_where_the_report_went(small_set):
    r = _evaluate(small_set, "--no-probe")
    out = r.stdout.splitlines()
    assert out[0].startswith("kNN accuracy, test: ") and "{" not in r.stdout  # no JSON
    (k_line,) = [line for line in out if line.startswith("kNN k: ")]
    # 192 training images, 19 of them held out: k is chosen among those ≤ 173 // 5 = 34
    assert "the best of 1, 5, 10, 20 on 19 validation images" in k_line
    assert "50, 100, 200 left out: k is at most 34" in k_line
    assert int(re.match(r"kNN k: (\d+)", k_line).group(1)) <= 34
    assert out[-1] == "report: none written (--report FILE.html writes one)"
    # the stages went to stderr, each with its time
    assert "choosing k for the kNN among 1, 5, 10, 20 on 19 validation rows" in r.stderr
    assert re.search(r"^\[ *\d+\.\d s\] ", r.stderr, re.M)

    r = _evaluate(small_set, "--no-probe", "--knn-select-k", "", "--knn-k", "200")
    (k_line,) = [line for line in r.stdout.splitlines() if line.startswith("kNN k: ")]
    assert k_line.startswith("kNN k: 34, the fixed k (--knn-k 200) lowered to a fifth")


def test_json_only_with_json(small_set):
    r = _evaluate(small_set, "--no-probe", "--json")
    res = json.loads(r.stdout)  # stdout is the JSON alone
    assert res["split"] == "test" and res["chosen_on"] == "val" and res["report"] is None
    assert res["knn"]["k"] <= res["knn"]["k_cap"] == 34 and res["knn"]["k_dropped"] == [
        50,
        100,
        200,
    ]
    assert "knn_accuracy" in res["metrics"] and "knn_accuracy" in res["baseline"]


def test_report_path_is_printed_and_the_confusion_matrix_names_its_classifier(
    small_set, tmp_path, monkeypatch
):
    import contrastkit.evaluate.report as report

    # the 2-D maps (t-SNE, UMAP) are not what is tested: a quick stand-in
    monkeypatch.setattr(report, "embedding_map", lambda x, method="tsne", seed=0: x[:, :2].numpy())
    path = tmp_path / "sub" / "r.html"
    r = _evaluate(small_set, "--report", str(path))
    assert r.stdout.splitlines()[-1] == f"report: {path.resolve()}"
    page = path.read_text()
    k = re.search(r"kNN k: (\d+)", r.stdout).group(1)
    assert f"Confusion matrix: kNN with k={k} (chosen on the validation images), test" in page
    assert "linear probe: L2 penalty" in r.stdout and "linear-probe accuracy, test" in r.stdout
    # a bad --report is refused before any work, in one line
    args = ["evaluate", "--encoder", small_set["encoder"], "--data", small_set["data"]]
    for bad, words in ((tmp_path, "must end in .html"), (tmp_path / "x.txt", "must end in")):
        r = CliRunner().invoke(app, [*args, "--report", str(bad)])
        assert r.exit_code == 2 and words in r.output and len(r.output.splitlines()) == 1


def test_k_and_the_probe_penalty_are_chosen_without_the_test_labels():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat(60)
    x = torch.nn.functional.one_hot(y, 3).float() + 0.8 * torch.randn(180, 3, generator=g)
    p = ClassificationProtocol(seed=0)
    a = p.evaluate(x[:120], y[:120], x[120:], y[120:])
    shuffled = y[120:][torch.randperm(60, generator=g)]
    b = p.evaluate(x[:120], y[:120], x[120:], shuffled)
    assert a.details["k"] == b.details["k"] and a.chosen_on == "val"
    assert a.details["probe_weight_decay"] == b.details["probe_weight_decay"]
    assert a.details["val_knn_accuracy_by_k"] == b.details["val_knn_accuracy_by_k"]
    assert a.metrics != b.metrics  # the figures do use the test labels


def test_the_k_grid_is_capped_at_a_fifth_of_the_bank():
    assert [knn_k_cap(n) for n in (0, 4, 5, 173, 1131)] == [1, 1, 1, 34, 226]
    y = torch.arange(2).repeat(15)
    x = torch.nn.functional.one_hot(y, 2).float()
    r = ClassificationProtocol(ks=(1, 5, 200), probe=False).evaluate(x[:20], y[:20], x[20:], y[20:])
    assert r.details["k_grid"] == [1] and r.details["k_dropped"] == [5, 200]  # 16 fit rows: ≤ 3
    r = ClassificationProtocol(ks=(200,), probe=False).evaluate(x[:20], y[:20], x[20:], y[20:])
    assert r.details["k"] == r.details["k_cap"] == 3
