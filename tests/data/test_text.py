"""Text data: TextSet checks and batches, the VADER and Lee corpora, files, tables, folds."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from contrastkit.data import (
    MissingDatasetError,
    TextSet,
    from_hf_dataset,
    load_lee,
    load_movie_snippets,
    load_text_dataset,
    load_text_file,
    load_text_table,
    stratified_folds,
)
from contrastkit.data import text as text_mod

# ----------------------------------------------------------------------------- TextSet


def test_textset_rejects_mismatched_or_mistyped_fields():
    texts = ["a b", "c d", "e f"]
    with pytest.raises(ValueError, match=r"labels must be a torch.int64 tensor of shape \(3,\)"):
        TextSet(texts, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"convert with labels\.long\(\)"):
        TextSet(texts, labels=torch.tensor([0, 1, 0], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"scores\.float\(\)"):
        TextSet(texts, scores=torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        TextSet(texts, labels=[0, 1, 0])
    with pytest.raises(ValueError, match=r"positives has 2 entries but texts has 3"):
        TextSet(texts, positives=["x", "y"])
    with pytest.raises(ValueError, match=r"texts\[1\] is blank.*Drop or fill"):
        TextSet(["a", "  ", "b"])
    with pytest.raises(TypeError, match=r"texts\[0\] is int"):
        TextSet([3, "b"])
    with pytest.raises(TypeError, match=r"wrap a single text as \[text\]"):
        TextSet("just one string")
    with pytest.raises(ValueError, match=r"labels range over \[0, 2\] but there are 2 classes"):
        TextSet(texts, labels=torch.tensor([0, 1, 2]), classes=["x", "y"])
    with pytest.raises(ValueError, match=r"scores\[1\] is nan"):
        TextSet(texts, scores=torch.tensor([0.0, float("nan"), 1.0]))


def _paired() -> TextSet:
    return TextSet(
        texts=["t0", "t1", "t2", "t3"],
        labels=torch.tensor([0, 1, 1, 0]),
        scores=torch.tensor([0.5, -1.0, 2.0, 3.0]),
        classes=["neg", "pos"],
        name="toy",
        positives=["p0", "p1", "p2", "p3"],
        negatives=["n0", "n1", "n2", "n3"],
        ids=["a", "b", "c", "d"],
    )


def test_subset_keeps_every_field_in_the_given_order():
    ts = _paired()
    for index in ([3, 1], np.array([3, 1]), torch.tensor([3, 1])):
        sub = ts.subset(index, name="toy/sub")
        assert sub.texts == ["t3", "t1"] and sub.positives == ["p3", "p1"]
        assert sub.negatives == ["n3", "n1"] and sub.ids == ["d", "b"]
        assert sub.labels.tolist() == [0, 1] and sub.scores.tolist() == [3.0, -1.0]
        assert sub.classes == ["neg", "pos"] and sub.name == "toy/sub" and len(sub) == 2
    assert ts.subset([0]).name == "toy"


def test_rows_is_the_trainers_batch():
    ts = _paired()
    index = torch.tensor([2, 0])
    batch = ts.rows(index)
    assert set(batch) == {"texts", "indices", "labels", "scores", "positives", "negatives"}
    assert batch["texts"] == ["t2", "t0"] and batch["indices"] is not None
    assert torch.equal(batch["indices"], index)
    assert batch["labels"].tolist() == [1, 0] and batch["labels"].dtype == torch.int64
    assert batch["scores"].tolist() == [2.0, 0.5] and batch["scores"].dtype == torch.float32
    assert batch["positives"] == ["p2", "p0"] and batch["negatives"] == ["n2", "n0"]
    plain = TextSet(["x", "y"]).rows(torch.tensor([1]))
    assert set(plain) == {"texts", "indices"} and plain["texts"] == ["y"]
    with pytest.raises(TypeError, match="1-D LongTensor"):
        ts.rows([0, 1])
    with pytest.raises(TypeError, match="1-D LongTensor"):
        ts.rows(torch.tensor([0.0, 1.0]))
    with pytest.raises(IndexError, match="4 rows"):
        ts.rows(torch.tensor([4]))


# ----------------------------------------------------------------------------- movie snippets


def test_movie_snippets_as_installed():
    try:
        data = load_movie_snippets()
    except MissingDatasetError as err:
        pytest.fail(f"run scripts/install-data .venv before the tests: {err}")
    # 10,605 lines in the file, 37 rated exactly 0 are dropped.
    assert len(data) == 10568 and len(data.ids) == len(set(data.ids)) == 10568
    assert data.classes == ["negative", "positive"] and data.name == "movie-snippets"
    assert torch.bincount(data.labels).tolist() == [5326, 5242]
    assert torch.equal(data.labels, (data.scores > 0).long())
    assert bool((data.scores != 0).all()) and -4 <= float(data.scores.min()) < -3.8
    assert 3.9 < float(data.scores.max()) <= 4
    assert data.ids[:3] == ["1", "2", "3"] and data.ids[-1] == "10605"
    assert data.texts[2] == "Effective but too tepid biopic"
    assert abs(float(data.scores[2]) + 0.6) < 1e-6
    # UTF-8 decoded: accented letters survive, nothing was replaced, no CR left over.
    joined = "".join(data.texts)
    assert joined.count("é") == 78 and "\ufffd" not in joined and "\r" not in joined


def _write_vader(folder, lines):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "movieReviewSnippets_GroundTruth.txt"
    path.write_bytes("\r\n".join(lines).encode("utf-8"))  # CRLF, no final newline, like VADER
    return path


def test_movie_snippets_search_order_zero_ratings_and_missing(tmp_path, monkeypatch):
    lines = ["1\t2.5\tA café triumph.", "2\t0.0\tNeither here nor there.", "3\t-1.25\tDull."]
    own = _write_vader(tmp_path / "own", lines)
    env = _write_vader(tmp_path / "env" / "vader", lines[:2])
    monkeypatch.setenv("CONTRASTKIT_DATA", str(tmp_path / "env"))
    assert load_movie_snippets().texts == ["A café triumph."]  # $CONTRASTKIT_DATA first
    for arg in (own, own.parent):  # an explicit file or folder wins
        data = load_movie_snippets(arg)
        assert data.texts == ["A café triumph.", "Dull."] and data.ids == ["1", "3"]
        assert data.labels.tolist() == [1, 0] and data.scores.tolist() == [2.5, -1.25]
    env.unlink()
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    _write_vader(tmp_path / "prefix" / "share" / "contrastkit" / "vader", lines[2:])
    assert load_movie_snippets().texts == ["Dull."]  # then <sys.prefix>/share/contrastkit/vader
    (tmp_path / "prefix" / "share" / "contrastkit" / "vader" / own.name).unlink()
    with pytest.raises(MissingDatasetError, match=r"scripts/install-data \.venv"):
        load_movie_snippets()
    with pytest.raises(MissingDatasetError, match="nowhere"):
        load_movie_snippets(tmp_path / "nowhere.txt")
    bad = _write_vader(tmp_path / "bad", ["1\t2.0\tfine", "2\tnot-a-number\ttext"])
    with pytest.raises(ValueError, match=r":2: expected 'id<TAB>rating<TAB>text'"):
        load_movie_snippets(bad)


# ----------------------------------------------------------------------------- Lee corpus


def test_lee_corpus_from_gensim():
    lee = load_lee()
    assert len(lee.documents) == 50 and len(lee.background) == 300
    sim = lee.similarity
    assert sim.shape == (50, 50) and sim.dtype == torch.float32
    assert torch.equal(sim, sim.T) and torch.equal(sim.diagonal(), torch.ones(50))
    off = sim[~torch.eye(50, dtype=torch.bool)]
    assert float(off.min()) >= 0.2 - 1e-6 and float(off.max()) <= 1.0
    # The file's first row is the upper triangle's first row; its first column was all zeros.
    assert sim[0, 1].item() == pytest.approx(0.3) and sim[1, 0].item() == pytest.approx(0.3)
    assert sim[0, 49].item() == pytest.approx(0.5) and sim[49, 0].item() == pytest.approx(0.5)
    pairs, values = lee.pairs()
    assert pairs.shape == (1225, 2) and bool((pairs[:, 0] < pairs[:, 1]).all())
    assert torch.equal(values, sim[pairs[:, 0], pairs[:, 1]])
    assert lee.documents[0].startswith("The national executive of the strife-torn Democrats")
    assert any("£3,000" in d for d in lee.documents)  # Latin-1 file decoded as Latin-1


def _write_lee(root, rows, docs=("one doc", "two doc", "three doc")):
    root.mkdir()
    (root / "lee.cor").write_bytes("\n".join(docs).encode("latin-1"))
    (root / "lee_background.cor").write_text("background a\nbackground b\n")
    (root / "similarities0-1.txt").write_text("\n".join("\t".join(r) for r in rows) + "\n")
    return root


def test_lee_similarity_file_layouts(tmp_path):
    upper = [["1", "0.4", "0.6"], ["0", "1", "0.8"], ["0", "0", "1"]]
    lee = load_lee(_write_lee(tmp_path / "upper", upper))
    expected = torch.tensor([[1, 0.4, 0.6], [0.4, 1, 0.8], [0.6, 0.8, 1]])
    assert torch.allclose(lee.similarity, expected)
    assert lee.documents == ["one doc", "two doc", "three doc"]
    assert lee.background == ["background a", "background b"]
    full = [[str(v.item()) for v in row] for row in expected]
    assert torch.allclose(load_lee(_write_lee(tmp_path / "full", full)).similarity, expected)
    skew = [r[:] for r in full]
    skew[2][0] = "0.1"
    with pytest.raises(ValueError, match="neither upper-triangular nor symmetric"):
        load_lee(_write_lee(tmp_path / "skew", skew))
    with pytest.raises(ValueError, match="expected 3×3"):
        load_lee(_write_lee(tmp_path / "short", upper[:2]))


def test_lee_without_gensim_names_the_install(monkeypatch):
    monkeypatch.setattr(text_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDatasetError, match="pip install gensim"):
        load_lee()


# ----------------------------------------------------------------------------- files, tables


def test_text_file_lines_crlf_bom_and_blank_lines(tmp_path):
    p = tmp_path / "s.txt"
    p.write_bytes("\ufeffFirst line\r\n\r\n  second\x0cpage  \r\nthird\u2028same line\n\n".encode())
    ts = load_text_file(p)
    assert ts.texts == ["First line", "second\x0cpage", "third\u2028same line"]
    assert ts.labels is None and ts.name == "s"
    bad = tmp_path / "latin.txt"
    bad.write_bytes("caf\xe9 au lait\nsecond\n".encode("latin-1"))
    with pytest.warns(UserWarning, match=r"not valid UTF-8.*1 undecodable byte"):
        ts = load_text_file(bad)
    assert ts.texts == ["caf\ufffd au lait", "second"]  # no line lost
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(ValueError, match="no non-blank lines"):
        load_text_file(tmp_path / "blank.txt")


def test_csv_table_labels_pairs_scores_and_quoting(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(
        "id,sentence,label,pos,neg,rating\r\n"
        '7,"Hello, world",b,hi,bye,1.5\r\n'
        '8,"two\nlines",a,x,y,-2\r\n'
        "9,plain,b,p,n,0\r\n"
    )
    ts = load_text_table(
        p,
        text_column="sentence",
        label_column="label",
        positive_column="pos",
        negative_column="neg",
        score_column="rating",
        id_column="id",
    )
    assert ts.texts == ["Hello, world", "two\nlines", "plain"]
    assert ts.classes == ["a", "b"] and ts.labels.tolist() == [1, 0, 1]
    assert ts.positives == ["hi", "x", "p"] and ts.negatives == ["bye", "y", "n"]
    assert ts.scores.tolist() == [1.5, -2.0, 0.0] and ts.ids == ["7", "8", "9"]
    with pytest.raises(ValueError, match=r"no column 'text' \(text_column\); its columns are"):
        load_text_table(p)
    with pytest.raises(ValueError, match=r"'labl'.*\['id', 'sentence'.*Did you mean 'label'"):
        load_text_table(p, text_column="sentence", label_column="labl")
    with pytest.raises(ValueError, match=r"column 'sentence'.*not a number"):
        load_text_table(p, text_column="pos", score_column="sentence")


def test_numeric_labels_sort_as_numbers_and_blank_rows_are_named(tmp_path):
    p = tmp_path / "stars.tsv"
    p.write_text('text\tstars\n"quoted" ok\t10\nmeh\t2\ngood\t10\nbad\t1\n')
    ts = load_text_table(p, label_column="stars")
    assert ts.classes == ["1", "2", "10"] and ts.labels.tolist() == [2, 1, 2, 0]
    assert ts.texts[0] == '"quoted" ok'  # TSV has no quoting: the marks stay
    blank = tmp_path / "blank.csv"
    blank.write_text("text,label\nfine,a\n  ,b\n")
    with pytest.raises(ValueError, match=r"row 1 has.*non-blank string"):
        load_text_table(blank)
    nolabel = tmp_path / "nolabel.csv"
    nolabel.write_text("text,label\nfine,a\nalso fine,\n")
    with pytest.raises(ValueError, match="row 1 has no label"):
        load_text_table(nolabel, label_column="label")


def test_jsonl_table(tmp_path):
    p = tmp_path / "pairs.jsonl"
    p.write_text(
        '{"anchor": "a dog runs", "positive": "a puppy sprints", "label": 3}\n'
        "\n"
        '{"anchor": "a cat naps", "positive": "a kitten sleeps", "label": 1}\n'
    )
    ts = load_text_table(p, text_column="anchor", positive_column="positive", label_column="label")
    assert ts.texts == ["a dog runs", "a cat naps"]
    assert ts.positives == ["a puppy sprints", "a kitten sleeps"]
    assert ts.classes == ["1", "3"] and ts.labels.tolist() == [1, 0]
    p.write_text('{"anchor": "x"}\n{"other": "y"}\n')
    with pytest.raises(ValueError, match="data row 1 has no 'anchor' field"):
        load_text_table(p, text_column="anchor")
    p.write_text('{"anchor": "x"}\nnot json\n')
    with pytest.raises(ValueError, match=r"pairs.jsonl:2: not a JSON object"):
        load_text_table(p, text_column="anchor")


class _FakeClassLabel:
    names = ("neg", "pos")


class _FakeDataset:
    """Quacks like datasets.Dataset: column_names, features, ds[column] -> list."""

    def __init__(self):
        self.column_names = ["sentence", "label", "idx"]
        self.features = {"sentence": object(), "label": _FakeClassLabel(), "idx": object()}

    def __getitem__(self, column):
        return {"sentence": ["good", "bad", "fine"], "label": [1, 0, 1], "idx": [5, 6, 7]}[column]


def test_from_hf_dataset_duck_typed():
    ts = from_hf_dataset(
        _FakeDataset(), text_column="sentence", label_column="label", id_column="idx", name="sst"
    )
    assert ts.texts == ["good", "bad", "fine"] and ts.ids == ["5", "6", "7"]
    assert ts.classes == ["neg", "pos"] and ts.labels.tolist() == [1, 0, 1]  # ClassLabel kept
    ts = from_hf_dataset({"text": ["x", "y"], "label": ["spam", "ham"]}, label_column="label")
    assert ts.classes == ["ham", "spam"] and ts.labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"no column 'text'.*\['sentence', 'label', 'idx'\]"):
        from_hf_dataset(_FakeDataset())

    class _Splits:
        def __init__(self):
            self.column_names = {"train": ["text"], "test": ["text"]}

    with pytest.raises(TypeError, match=r"pass one split.*ds\['test'\]"):
        from_hf_dataset(_Splits())
    with pytest.raises(TypeError, match="mapping of column name"):
        from_hf_dataset([1, 2, 3])


def test_load_text_dataset_dispatch_and_unknown_names(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "b.csv").write_text("text,y\nthree,1\n")
    assert load_text_dataset(tmp_path / "a.txt").texts == ["one", "two"]
    assert load_text_dataset(str(tmp_path / "b.csv"), label_column="y").labels.tolist() == [0]
    assert len(load_text_dataset("movie_snippets")) == 10568
    with pytest.raises(ValueError, match="Did you mean 'movie-snippets'"):
        load_text_dataset("movie-snipets")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text_dataset(tmp_path / "missing.jsonl")


# ----------------------------------------------------------------------------- folds


def test_stratified_folds_cover_every_row_once_and_keep_ratios():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)[torch.randperm(100)]
    folds = stratified_folds(labels, k=5, seed=3)
    assert len(folds) == 5
    tests = torch.cat([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(100))  # each row in exactly one test fold
    for train, test in folds:
        assert train.dtype == test.dtype == torch.int64
        assert sorted(torch.cat([train, test]).tolist()) == list(range(100))
        assert torch.bincount(labels[test], minlength=3).tolist() == [12, 6, 2]
    again = stratified_folds(labels, k=5, seed=3)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(folds, again))
    other = stratified_folds(labels, k=5, seed=4)
    assert any(not torch.equal(a[1], b[1]) for a, b in zip(folds, other))
    with pytest.raises(ValueError, match=r"class 2 has only 10 rows.*k <= 10"):
        stratified_folds(labels, k=11)
    with pytest.raises(ValueError, match="integer class ids"):
        stratified_folds(labels.float())
