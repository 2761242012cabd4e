"""Tables: column inference, bad values in files, the preprocessor (median fill, indicators,
unknown categories, quantile and standard scaling, JSON round trip), the built-in tables,
splits, label fractions and errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from contrastkit.data import tables as T
from contrastkit.data.fields import kind_of

# ------------------------------------------------------------------------------- helpers


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": np.arange(100, 100 + n),  # an identifier: dropped
            "age": rng.integers(18, 90, n),  # int, many values: numeric
            "score": rng.normal(size=n),  # float: numeric
            "rating": rng.integers(1, 6, n),  # int, 5 values: categorical
            "member": rng.random(n) < 0.5,  # bool: categorical
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),  # text: categorical
            "income": [f"{v:.2f}" for v in rng.gamma(2.0, 10.0, n)],  # numbers as text
            "y": rng.choice(["no", "yes"], n),
        }
    )


BAD_CSV_ROWS = 20


def _write_bad_csv(path: Path) -> Path:
    """20 rows: ``amount`` (floats; row 3 "abc", rows 5 and 9 empty), ``colour`` (row 7
    empty; "purple" only in rows 18-19), ``visits`` (ints), ``label`` (row 11 empty)."""
    lines = ["amount,colour,visits,label"]
    colours = ["red", "green", "blue"]
    for i in range(BAD_CSV_ROWS):
        amount = {3: "abc", 5: "", 9: ""}.get(i, f"{1.5 + 0.37 * i:.2f}")
        colour = "" if i == 7 else "purple" if i >= 18 else colours[i % 3]
        label = "" if i == 11 else ("a", "b")[i % 2]
        lines.append(f"{amount},{colour},{i % 4},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------- read_table


def test_inference_on_a_hand_made_frame():
    df = _frame()
    df.loc[3, "income"] = "n/a"  # a missing token, not a bad value
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing bad: no warning
        raw = T.read_table(df, target="y", name="toy")
    assert raw.numeric == ["age", "score", "income"]
    assert raw.categorical == ["rating", "member", "city"]
    assert list(raw.frame.columns) == ["age", "score", "rating", "member", "city", "income"]
    assert raw.name == "toy" and raw.target_name == "y" and len(raw) == 40
    assert raw.target.tolist() == df["y"].tolist()
    assert raw.frame["income"].dtype == np.float64 and np.isnan(raw.frame["income"][3])
    assert raw.frame["income"][0] == pytest.approx(float(df["income"][0]))
    assert set(raw.frame["member"]) <= {"True", "False"}
    assert set(raw.frame["rating"]) <= {"1", "2", "3", "4", "5"}  # whole numbers without .0
    notes = " ".join(raw.notes)
    assert "'user_id'" in notes and "identifier" in notes
    assert "'income' 1" in notes  # the missing value is counted


def test_overrides_and_drop():
    raw = T.read_table(
        _frame(), target="y", numeric=["rating"], categorical="age", drop=["city", "member"]
    )
    assert raw.numeric == ["score", "rating", "income"]
    assert raw.categorical == ["age"]
    assert "city" not in raw.frame.columns and "member" not in raw.frame.columns
    # an identifier named explicitly is kept
    raw = T.read_table(_frame(), target="y", categorical=["user_id"])
    assert "user_id" in raw.categorical


def test_text_column_mostly_numbers_is_numeric_with_bad_values_counted():
    values = [f"{0.5 * i:.1f}" for i in range(30)]
    values[4], values[17] = "abc", "12,5"
    df = pd.DataFrame({"x": values, "c": ["u", "v"] * 15})
    with pytest.warns(UserWarning, match=r"2 of 30 values are not numbers \(e\.g\. 'abc'\)"):
        raw = T.read_table(df)
    assert raw.numeric == ["x"] and raw.categorical == ["c"] and raw.target is None
    assert np.isnan(raw.frame["x"][[4, 17]]).all() and raw.frame["x"].notna().sum() == 28
    assert any("2 of 30 values are not numbers" in n for n in raw.notes)
    # mostly words: categorical
    df = pd.DataFrame({"x": ["a", "b", "1", "c"] * 5})
    assert T.read_table(df).categorical == ["x"]


def test_float_column_of_whole_numbers_with_gaps_is_categorical():
    df = pd.DataFrame({"grade": [1.0, 2.0, np.nan, 3.0] * 5, "w": np.linspace(0, 1, 20)})
    raw = T.read_table(df)
    assert raw.categorical == ["grade"] and raw.numeric == ["w"]
    assert raw.frame["grade"].tolist()[:4] == ["1", "2", None, "3"]


def test_bad_csv_loads_counts_everything_and_never_crashes(tmp_path):
    path = _write_bad_csv(tmp_path / "bad.csv")
    with pytest.warns(UserWarning) as record:
        raw = T.read_table(path, target="label")
    message = " ".join(str(w.message) for w in record)
    assert "1 of 20 rows whose target 'label' is missing" in message
    assert "1 of 19 values is not a number (e.g. 'abc')" in message
    assert raw.name == "bad" and len(raw) == 19  # row 11 dropped
    assert raw.numeric == ["amount"] and raw.categorical == ["colour", "visits"]
    notes = " ".join(raw.notes)
    assert "'abc'" in notes and "dropped 1 of 20 rows" in notes
    assert "'amount' 2" in notes and "'colour' 1" in notes  # empty cells counted as missing
    # rows 0..16 of the file are rows 0..15 here (row 11 went); fit on them, meet purple later
    train, later = np.arange(16), np.arange(16, 19)
    pre = T.TablePreprocessor().fit(raw, train)
    assert pre.categories[0] == ["blue", "green", "red"]  # purple only in the later rows
    assert pre.indicators == ["amount"]  # "abc" and the empty cells are in training
    with pytest.warns(UserWarning, match=r"'colour': 2 values not seen in training"):
        x = pre.transform(raw, later)
    assert torch.isfinite(x).all()
    colour = x[:, pre.feature_names.index("colour")]
    assert colour.tolist() == [1.0, 0.0, 0.0]  # blue (row 17 of the file), purple, purple
    assert pre.unknown_counts == {"colour": 2}
    # and the whole pipeline on it
    with pytest.warns(UserWarning):
        data = T.load_table_splits(path, target="label", test_fraction=0.25, val_fraction=0.25)
    total = len(data.train) + len(data.val) + len(data.test)
    assert total == 19 and data.classes == ["a", "b"]
    assert all(torch.isfinite(s.x).all() for s in (data.train, data.val, data.test))
    assert "'abc'" in data.note and "stratified by 'label'" in data.note


def test_tsv_and_parquet(tmp_path):
    df = _frame(30)
    df.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    df.to_csv(tmp_path / "t.csv.gz", index=True)  # with an index column: "Unnamed: 0"
    ref = T.read_table(df, target="y")
    for name in ("t.tsv", "t.parquet", "t.csv.gz"):
        raw = T.read_table(tmp_path / name, target="y")
        assert raw.name == "t"
        assert raw.numeric == ref.numeric and raw.categorical == ref.categorical, name
        pd.testing.assert_frame_equal(raw.frame, ref.frame)
    assert "'Unnamed: 0'" in " ".join(T.read_table(tmp_path / "t.csv.gz", target="y").notes)


# ----------------------------------------------------------------------------- errors


def test_unknown_columns_name_the_valid_ones():
    df = _frame(10)
    with pytest.raises(ValueError, match=r"no column 'scor' in table.*its columns are.*'score'"):
        T.read_table(df, target="y", numeric=["scor"])
    with pytest.raises(ValueError, match=r"Did you mean 'city'"):
        T.read_table(df, target="y", drop=["citi"])
    with pytest.raises(ValueError, match=r"both numeric= and categorical="):
        T.read_table(df, target="y", numeric=["age"], categorical=["age"])
    with pytest.raises(ValueError, match=r"target 'y' is also named in numeric="):
        T.read_table(df, target="y", numeric=["y"])


def test_missing_target_column_is_a_clear_error(tmp_path):
    path = _write_bad_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=r"target: no column 'class'.*'label'"):
        T.read_table(path, target="class")
    with pytest.raises(ValueError, match=r"target: no column 'Label'.*Did you mean 'label'"):
        T.load_table_splits(path, target="Label")


def test_single_class_target_is_a_clear_error():
    df = pd.DataFrame({"x": np.arange(30.0) / 7, "y": ["only"] * 30})
    with pytest.raises(ValueError, match=r"single class \('only'\).*target=None"):
        T.load_table_splits(df, target="y")
    df["y"] = np.arange(30) / 7.0  # continuous
    with pytest.raises(ValueError, match=r"looks continuous.*qcut"):
        T.load_table_splits(df, target="y")


def test_bad_sources():
    with pytest.raises(FileNotFoundError, match=r"Did you mean 'mlc_churn'"):
        T.read_table("mlc_chrn", target=None)
    with pytest.raises(TypeError, match="pandas DataFrame"):
        T.read_table(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scaling must be one of"):
        T.TablePreprocessor("minmax")
    with pytest.raises(ValueError, match="test_fraction"):
        T.load_table_splits("wine", test_fraction=0.0)


# ------------------------------------------------------------------------- preprocessor


def _raw_for_hand_checks() -> T.RawTable:
    df = pd.DataFrame(
        {
            "a": [1.5, 2.5, np.nan, 10.5, 3.5, np.nan],
            "b": [0.25, 0.5, 0.75, 1.25, np.nan, 2.25],  # missing only outside training
            "c": ["x", "y", "x", None, "z", "w"],
        }
    )
    return T.read_table(df)


def test_missing_indicator_and_median_fill_by_hand():
    raw = _raw_for_hand_checks()
    assert raw.numeric == ["a", "b"] and raw.categorical == ["c"]
    pre = T.TablePreprocessor("standard").fit(raw, [0, 1, 2, 3])
    assert pre.medians == [2.5, 0.625]
    assert pre.indicators == ["a"]  # b had no missing value in training
    assert pre.feature_names == ["a", "b", "a:missing", "c"]
    assert pre.n_numeric == 3 and pre.cardinalities == [3]  # x, y + code 0
    a_fill = np.array([1.5, 2.5, 2.5, 10.5])
    b_fill = np.array([0.25, 0.5, 0.75, 1.25])
    assert pre.means == pytest.approx([a_fill.mean(), b_fill.mean()])
    assert pre.stds == pytest.approx([a_fill.std(), b_fill.std()])
    with pytest.warns(UserWarning, match="not seen in training"):  # z, w
        x = pre.transform(raw, torch.tensor([2, 4, 5]))
    assert x.dtype == torch.float32 and x.shape == (3, 4)
    expect_a = (np.array([2.5, 3.5, 2.5]) - a_fill.mean()) / a_fill.std()
    expect_b = (np.array([0.75, 0.625, 2.25]) - b_fill.mean()) / b_fill.std()
    assert x[:, 0].numpy() == pytest.approx(expect_a, rel=1e-6)
    assert x[:, 1].numpy() == pytest.approx(expect_b, rel=1e-6)  # row 4: b filled, no flag
    assert x[:, 2].tolist() == [1.0, 0.0, 1.0]
    # bool masks and None select rows too
    mask = np.zeros(6, dtype=bool)
    mask[[2, 4, 5]] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(pre.transform(raw, mask), x)
        assert pre.transform(raw).shape == (6, 4)


def test_unknown_category_at_transform_is_code_zero():
    raw = _raw_for_hand_checks()
    pre = T.TablePreprocessor().fit(raw, [0, 1, 2, 3])
    assert pre.categories == [["x", "y"]]
    with pytest.warns(UserWarning, match=r"'c': 2 values not seen in training \(e\.g\. 'z'\)"):
        x = pre.transform(raw)
    assert x[:, -1].tolist() == [1.0, 2.0, 1.0, 0.0, 0.0, 0.0]  # x y x missing z w
    assert pre.unknown_counts == {"c": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per preprocessor
        pre.transform(raw)
    assert pre.unknown_counts == {"c": 4}
    # a new DataFrame at inference: extra columns ignored, values as the raw types come
    new = pd.DataFrame({"c": ["y", "q"], "a": ["3.0", "oops"], "b": [1, 2], "extra": [0, 0]})
    x = pre.transform(new)
    assert x[:, -1].tolist() == [2.0, 0.0] and x[:, 2].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"lacks columns \['b'\]"):
        pre.transform(new.drop(columns="b"))


def test_quantile_and_standard_scaling():
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    skewed = rng.exponential(3.0, 400)
    skewed[::50] = np.nan
    raw = T.read_table(pd.DataFrame({"s": skewed, "u": rng.uniform(-5, 5, 400)}))
    train = np.arange(300)
    q = T.TablePreprocessor("quantile").fit(raw, train)
    s = T.TablePreprocessor("standard").fit(raw, train)
    assert q.feature_names == s.feature_names == ["s", "u", "s:missing"]
    xq, xs = q.transform(raw), s.transform(raw)
    # standard: mean 0, std 1 on the (median-filled) training rows
    assert xs[train, :2].mean(0).abs().max() < 1e-5
    assert (xs[train, :2].std(0, unbiased=False) - 1).abs().max() < 1e-4
    # quantile: the training rows become normal (median 0, symmetric), skew removed
    ref = QuantileTransformer(n_quantiles=300, output_distribution="normal", random_state=0)
    filled = raw.frame[["s", "u"]].to_numpy().copy()
    filled[np.isnan(filled[:, 0]), 0] = q.medians[0]
    ref.fit(filled[train])
    assert xq[:, :2].numpy() == pytest.approx(ref.transform(filled), abs=1e-5)
    assert abs(float(xq[train, 1].median())) < 0.05
    assert abs(float(xq[train, 0].mean())) < 0.1 and float(xs[train, 0].median()) < -0.2
    assert not torch.allclose(xq, xs)
    assert torch.equal(xq[:, 2], xs[:, 2])  # the same indicator
    # values beyond the training range are clipped to it
    far = pd.DataFrame({"s": [-100.0, 1e6], "u": [-50.0, 50.0]})
    xf = q.transform(far)
    low = float(np.nanmin(skewed[train]))
    lo_hi = pd.DataFrame({"s": [low, low], "u": [-5.0, 5.0]})
    assert float(xf[0, 0]) == float(q.transform(lo_hi)[0, 0])
    assert float(xf[1, 1]) == pytest.approx(float(xq[train, 1].max()))
    # a value repeated at the minimum (zeros of a count) maps to the middle of its range
    counts = np.where(np.arange(200) < 140, 0, np.arange(200) % 37 + 1).astype(float)
    zq = T.TablePreprocessor().fit(T.read_table(pd.DataFrame({"n": counts})))
    z = zq.transform(pd.DataFrame({"n": [0.0]}))
    assert float(z[0, 0]) == pytest.approx(-0.385, abs=0.01)  # ndtri(0.7 / 2), not -5.2
    # n_quantiles never exceeds the training rows
    small = T.TablePreprocessor().fit(raw, np.arange(7))
    assert len(small.quantiles[0]) == 7


@pytest.mark.parametrize("scaling", T.SCALINGS)
def test_json_round_trip_gives_identical_transform(scaling):
    raw = T.read_table(_frame(60), target="y")
    pre = T.TablePreprocessor(scaling).fit(raw, np.arange(40))
    text = json.dumps(pre.to_json(), allow_nan=False)  # plain JSON, no NaN
    back = T.TablePreprocessor.from_json(json.loads(text))
    assert back.feature_names == pre.feature_names
    assert back.n_numeric == pre.n_numeric and back.cardinalities == pre.cardinalities
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(back.transform(raw), pre.transform(raw))
        new = _frame(10, seed=5).assign(city="Rome")  # unknown category
        assert torch.equal(back.transform(new), pre.transform(new))
    with pytest.raises(ValueError, match="not a saved TablePreprocessor"):
        T.TablePreprocessor.from_json({"numeric": []})
    with pytest.raises(RuntimeError, match="not fitted"):
        T.TablePreprocessor().transform(raw)


# ------------------------------------------------------------------------ built-in tables


@pytest.mark.parametrize(
    ("name", "rows", "features", "classes"),
    [
        ("mlc_churn", 5000, 19, ["no", "yes"]),
        ("wa_churn", 7043, 19, ["No", "Yes"]),
        ("biopsy", 699, 9, ["benign", "malignant"]),
        ("digits", 1797, 64, [str(i) for i in range(10)]),
        ("breast_cancer", 569, 30, ["benign", "malignant"]),
        ("wine", 178, 13, ["class_0", "class_1", "class_2"]),
    ],
)
def test_builtin_tables_load(name, rows, features, classes):
    raw = T.read_table(name)
    assert len(raw) == rows and raw.name == name
    assert len(raw.numeric) + len(raw.categorical) == features
    assert "rownames" not in raw.frame.columns and "ID" not in raw.frame.columns
    data = T.load_table_splits(name, seed=0)
    sizes = [len(data.train), len(data.val), len(data.test)]
    assert sum(sizes) == rows and sizes[2] == round(0.2 * rows)
    assert data.classes == classes and data.protocol == "tabular"
    for part in (data.train, data.val, data.test):
        assert part.x.dtype == torch.float32 and torch.isfinite(part.x).all()
        assert part.x.shape[1] == data.preprocessor.num_features
        assert part.y.dtype == torch.int64 and set(part.y.tolist()) == set(range(len(classes)))
    # the splits are disjoint and cover the table
    allrows = torch.cat([data.raw_rows[k] for k in ("train", "val", "test")])
    assert torch.equal(allrows.sort().values, torch.arange(rows))


def test_builtin_missing_values_are_handled():
    raw = T.read_table("biopsy")
    assert int(sum(v is None for v in raw.frame["V6"])) == 16  # the 16 missing bare nuclei
    assert raw.target.value_counts().to_dict() == {"benign": 458, "malignant": 241}
    data = T.load_table_splits("biopsy")
    v6 = data.preprocessor.feature_names.index("V6")
    gaps = [i for i, v in enumerate(raw.frame["V6"]) if v is None]
    codes = torch.cat([data.train.x, data.val.x, data.test.x])[:, v6]
    where = torch.cat([data.raw_rows[k] for k in ("train", "val", "test")])
    assert (codes[torch.isin(where, torch.tensor(gaps))] == 0).all()
    # wa_churn: total_charges is numeric with 11 missing values: median + indicator
    data = T.load_table_splits("wa_churn")
    assert "total_charges:missing" in data.preprocessor.feature_names
    assert "'total_charges' 11" in data.note
    flag = data.preprocessor.feature_names.index("total_charges:missing")
    flagged = sum(int(s.x[:, flag].sum()) for s in (data.train, data.val, data.test))
    assert flagged == 11


# ----------------------------------------------------------------------------- table sets


def test_table_set_rows_fields_and_checks():
    data = T.load_table_splits("wine", seed=3)
    s = data.train
    assert s.fields == {"table": "table", "indices": "ids", "labels": "ids"}
    batch = s.rows(torch.tensor([4, 0]))
    assert sorted(batch) == ["indices", "labels", "table"]
    assert torch.equal(batch["table"], s.x[[4, 0]]) and torch.equal(batch["labels"], s.y[[4, 0]])
    assert kind_of(batch["table"], s.fields["table"]).name == "table"
    item = s[2]
    assert torch.equal(item["table"], s.x[2]) and int(item["indices"]) == 2
    assert int(item["labels"]) == int(s.y[2])
    assert s.encoder_inputs() is s.x and s.labels is s.y and s.num_classes == 3
    sub = s.subset([5, 1], name="wine/sub")
    assert len(sub) == 2 and torch.equal(sub.x, s.x[[5, 1]]) and sub.name == "wine/sub"
    nums, codes = T.split_features(s.x, s.n_numeric)
    assert nums.shape == (len(s), 13) and codes.shape == (len(s), 0)
    with pytest.raises(ValueError, match="n_numeric"):
        T.TableSet(torch.zeros(3, 4), None, n_numeric=2, cardinalities=[3])
    with pytest.raises(ValueError, match="whole codes"):
        T.TableSet(torch.tensor([[0.5, 3.0]]), None, n_numeric=1, cardinalities=[3])


def test_splits_are_seeded_and_unlabelled_tables_split_at_random():
    df = _frame(80)
    a = T.load_table_splits(df, target="y", seed=1)
    b = T.load_table_splits(df, target="y", seed=1)
    c = T.load_table_splits(df, target="y", seed=2)
    assert torch.equal(a.raw_rows["test"], b.raw_rows["test"])
    assert not torch.equal(a.raw_rows["test"], c.raw_rows["test"])
    assert a.train.n_numeric == 3 and a.train.cardinalities == [6, 3, 4]  # rating, member, city
    u = T.load_table_splits(df.drop(columns="y"), target=None)
    assert u.train.y is None and u.classes == [] and "at random" in u.note
    assert sorted(u.train.rows(torch.tensor([0]))) == ["indices", "table"]


# ------------------------------------------------------------------------ label fractions


def test_label_fraction_indices_stratified_seeded_at_least_one_per_class():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 3 + [3] * 1)
    idx = T.label_fraction_indices(labels, 0.1, seed=0)
    assert idx.dtype == torch.long and torch.equal(idx, idx.sort().values)
    assert len(set(idx.tolist())) == len(idx)
    assert torch.bincount(labels[idx], minlength=4).tolist() == [5, 3, 1, 1]
    assert torch.equal(idx, T.label_fraction_indices(labels, 0.1, seed=0))
    assert not torch.equal(idx, T.label_fraction_indices(labels, 0.1, seed=1))
    assert torch.equal(T.label_fraction_indices(labels, 1.0, seed=0), torch.arange(len(labels)))
    half = T.label_fraction_indices(labels, 0.5, seed=3)
    assert torch.bincount(labels[half], minlength=4).tolist() == [25, 15, 2, 1]
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        T.label_fraction_indices(labels, 0.0, seed=0)
    with pytest.raises(ValueError, match="integer"):
        T.label_fraction_indices(labels.float(), 0.5, seed=0)
