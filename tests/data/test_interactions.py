"""Interaction logs: reading (RecBole headers, bad rows, duplicates), the two per-user splits,
MovieLens-100K from the recbole package, and the trainer's rows."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from contrastkit.data import MissingDatasetError
from contrastkit.data.interactions import (
    InteractionPairs,
    Interactions,
    load_interactions,
    load_movielens_100k,
    movielens_100k_dir,
    read_interactions,
)


@pytest.fixture(scope="module")
def ml100k() -> Interactions:
    return load_movielens_100k()


@pytest.fixture(scope="module")
def ml100k_llo() -> Interactions:
    return load_movielens_100k(split="leave_last_out")


def _pairs(t: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, t.tolist()))


def _check_disjoint_and_covering(data: Interactions, n_rows: int) -> None:
    parts = [_pairs(data.train), _pairs(data.val), _pairs(data.test)]
    assert sum(len(p) for p in parts) == n_rows
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    for t in (data.train, data.val, data.test):
        assert t.dtype == torch.int64 and t.shape[1] == 2


def test_movielens_100k_loads_with_features(ml100k):
    frame = read_interactions(movielens_100k_dir() / "ml-100k.inter")
    assert len(frame) == 100_000 and list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert (ml100k.n_users, ml100k.n_items) == (943, 1682)
    assert ml100k.user_ids[:3] == ["1", "2", "3"] and ml100k.item_ids[-1] == "1682"
    _check_disjoint_and_covering(ml100k, 100_000)
    assert ml100k.item_popularity().sum() == len(ml100k.train)
    assert ml100k.item_titles[ml100k.item_index("1")] == "Toy Story"
    assert ml100k.user_features.shape == (943, 30) and ml100k.item_features.shape == (1682, 26)
    # each user: one age bucket, one gender, one occupation
    assert torch.equal(ml100k.user_features.sum(1), torch.full((943,), 3.0))
    genres = ml100k.item_features[:, :19]
    assert bool((genres.sum(1) >= 1).all())
    assert int(ml100k.item_features[:, 19:].sum()) == 1681  # one movie has no known year
    assert "MovieLens-100K" in ml100k.note and ml100k.protocol == "ranking"


def test_random_split_holds_out_one_val_and_one_test_per_user(ml100k):
    for part in (ml100k.train, ml100k.val, ml100k.test):
        assert torch.unique(part[:, 0]).numel() == 943  # every user has ≥ 20 ratings
    per_user = torch.bincount(ml100k.test[:, 0], minlength=943).double()
    totals = per_user + torch.bincount(ml100k.train[:, 0]) + torch.bincount(ml100k.val[:, 0])
    frac = (per_user / totals).mean()
    assert 0.09 < float(frac) < 0.11


def test_random_split_is_seeded(ml100k):
    again = load_movielens_100k(seed=0)
    other = load_movielens_100k(seed=1)
    assert torch.equal(again.test, ml100k.test) and torch.equal(again.train, ml100k.train)
    assert not torch.equal(other.test, ml100k.test)


def test_leave_last_out_puts_each_users_latest_in_test(ml100k_llo):
    data = ml100k_llo
    _check_disjoint_and_covering(data, 100_000)
    assert len(data.test) == 943 and len(data.val) == 943
    frame = read_interactions(movielens_100k_dir() / "ml-100k.inter")
    frame["u"] = [data.user_index(u) for u in frame["user"]]
    frame["i"] = [data.item_index(i) for i in frame["item"]]
    # the latest by time, ties by item index
    last = frame.sort_values(["u", "timestamp", "i"]).groupby("u").tail(2)
    test = last.groupby("u").tail(1)
    val = last.drop(test.index)
    assert _pairs(data.test) == set(zip(test["u"], test["i"]))
    assert _pairs(data.val) == set(zip(val["u"], val["i"]))
    assert data.split == "leave_last_out"


def test_leave_last_out_breaks_ties_by_item_index_and_needs_a_timestamp():
    log = pd.DataFrame({"user": ["u"] * 4, "item": ["d", "c", "b", "a"], "timestamp": [1, 5, 5, 5]})
    data = load_interactions(log, split="leave_last_out")
    # a, b, c share the latest time: the highest item index (c) is last
    assert data.item_ids == ["a", "b", "c", "d"]
    assert data.test.tolist() == [[0, 2]] and data.val.tolist() == [[0, 1]]
    assert data.train.tolist() == [[0, 0], [0, 3]]
    with pytest.raises(ValueError, match="no timestamp column"):
        load_interactions(log.drop(columns="timestamp"), split="leave_last_out")


def test_users_with_few_interactions_stay_in_train_and_every_evaluated_user_trains():
    rng = np.random.default_rng(0)
    users = np.repeat([f"u{i}" for i in range(40)], rng.integers(1, 12, 40))
    items = [f"i{j}" for j in rng.integers(0, 1000, len(users))]
    log = pd.DataFrame({"user_id": users, "item_id": items}).drop_duplicates()
    counts = log["user_id"].value_counts()
    data = load_interactions(log, min_user_interactions=4)
    _check_disjoint_and_covering(data, len(log))
    held = set(data.val[:, 0].tolist()) | set(data.test[:, 0].tolist())
    for raw, n in counts.items():
        u = data.user_index(raw)
        if n < 4:
            assert u not in held
        else:
            assert u in set(data.val[:, 0].tolist()) and u in set(data.test[:, 0].tolist())
            assert u in set(data.train[:, 0].tolist())
    assert "fewer than 4 interactions are in train only" in data.note
    with pytest.raises(ValueError, match="min_user_interactions must be at least 3"):
        load_interactions(log, min_user_interactions=2)
    with pytest.raises(ValueError, match="fractions must be"):
        load_interactions(log, fractions=(0.5, 0.1, 0.1))


def test_a_csv_with_bad_rows_loads_with_one_counted_warning(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "user_id,item_id,rating,timestamp\n"
        "1,10,4,100\n"
        ",11,3,101\n"  # line 3: missing user
        "2,12,abc,102\n"  # line 4: rating not a number
        "2,13,5,103\n"
        "1,10,2,150\n"  # the pair (1, 10) again, later: kept
        "3,14,1,104\n"
        "3,15,2,105\n"
        "3,16,3,106\n"
    )
    with pytest.warns(UserWarning) as caught:
        frame = read_interactions(path)
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "dropped 2 of 8 rows" in msg
    assert "1 with a missing user (e.g. row 3)" in msg
    assert "1 with an unparseable rating (e.g. row 4: 'abc')" in msg
    assert "1 repeated (user, item) pairs kept once, the latest" in msg
    assert len(frame) == 5
    kept = frame[(frame["user"] == "1") & (frame["item"] == "10")]
    assert kept["rating"].tolist() == [2.0] and kept["timestamp"].tolist() == [150.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_interactions(path, min_rating=2)
    assert data.n_users == 3 and "rated ≥ 2" in data.note
    assert data.item_ids == ["10", "13", "15", "16"]  # item 14 (rated 1) is gone
    assert _pairs(data.train) | _pairs(data.val) | _pairs(data.test) == {
        (0, 0), (1, 1), (2, 2), (2, 3)
    }  # fmt: skip


def test_recbole_inter_headers_and_column_names(tmp_path):
    path = tmp_path / "toy.inter"
    path.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "007\ta\t5\t3\n7\ta\t4\t2\n007\tb\t3\t1\n"
    )
    frame = read_interactions(path)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame["user"].tolist() == ["007", "7", "007"]  # raw ids stay strings
    data = load_interactions(path, min_user_interactions=1, fractions=(1.0, 0.0, 0.0))
    assert data.user_ids == ["007", "7"] and data.name == "toy" and len(data.train) == 3
    assert data.user_index("7") == 1 and data.item_index("b") == 1
    with pytest.raises(KeyError, match=r"no user with raw id '8'.*e\.g\. '007', '7'"):
        data.user_index(8)
    other = pd.DataFrame({"uid": ["x", "y"], "movie": ["m", "n"], "when": ["2024-01-02", "bad"]})
    with pytest.raises(ValueError, match=r"no column 'user'.*columns are \['uid', 'movie'"):
        read_interactions(other, user_column="user", item_column="movie")
    with pytest.raises(ValueError, match=r"no user column.*user_column="):
        read_interactions(other)
    with pytest.warns(UserWarning, match=r"1 with an unparseable timestamp \(e\.g\. row 1: 'bad'"):
        parsed = read_interactions(
            other, user_column="uid", item_column="movie", timestamp_column="when"
        )
    assert parsed["timestamp"].tolist() == [1704153600.0]  # dates → seconds
    floats = pd.DataFrame({"user": [1.0, None, 2.0], "item": [3, 4, 5]})  # ids made floats
    with pytest.warns(UserWarning, match=r"1 with a missing user \(e\.g\. row 1\)"):
        assert read_interactions(floats)["user"].tolist() == ["1", "2"]
    with pytest.raises(ValueError, match="unsupported interaction file suffix"):
        read_interactions(tmp_path / "log.json")


def test_interaction_pairs_are_trainer_rows():
    pairs = InteractionPairs(torch.tensor([[0, 3], [2, 1], [1, 1]]))
    assert pairs.fields == {"users": "ids", "items": "ids", "indices": "ids"}
    assert len(pairs) == 3 and pairs.labels is None
    row = pairs[1]
    assert row["users"].dtype == torch.int64 and row["users"].ndim == 0
    assert (int(row["users"]), int(row["items"]), int(row["indices"])) == (2, 1, 1)
    batch = pairs.rows(torch.tensor([2, 0]))
    assert batch["users"].tolist() == [1, 0] and batch["items"].tolist() == [1, 3]
    assert batch["indices"].tolist() == [2, 0]
    assert pairs.encoder_inputs().tolist() == [3, 1, 1]
    loader = torch.utils.data.DataLoader(pairs, batch_size=2)
    assert next(iter(loader))["items"].tolist() == [3, 1]


def test_missing_recbole_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "recbole" else real(name, *a)
    )
    with pytest.raises(MissingDatasetError, match=r"scripts/install-data.*recbole==1\.2\.1"):
        load_movielens_100k()
