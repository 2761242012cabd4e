"""The table anomaly detector of ``contrastkit.app.anomaly_tables`` without the CLI: separation
of off-manifold rows, the threshold's false-positive rate on fresh normal rows, save/load,
CSV input with bad values and unseen categories, labels for AUROC, and its errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from contrastkit.app.anomaly import AnomalyConfig
from contrastkit.app.anomaly_tables import (
    TableDetector,
    detector_kind,
    fit_table_detector,
    is_table_source,
    load_table_detector,
    score_table,
)
from contrastkit.evaluate.anomaly import auroc

pd = pytest.importorskip("pandas")

STEPS = 60


def _normal(n: int, seed: int):
    """Rows on a 1-D manifold: three correlated numbers and a category that follows them."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": z + 0.1 * rng.normal(size=n),
            "b": 2 * z + 0.1 * rng.normal(size=n),
            "c": np.exp(0.5 * z) + 0.05 * rng.normal(size=n),
            "kind": np.where(z + 0.2 * rng.normal(size=n) > 0, "up", "down"),
        }
    )


def _anomalies(n: int, seed: int):
    """Rows off the manifold: the same ranges, the columns drawn independently."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": 2 * rng.normal(size=n),
            "c": np.exp(0.5 * rng.normal(size=n)),
            "kind": rng.choice(["up", "down"], size=n),
        }
    )


def _cfg(**kw) -> AnomalyConfig:
    return AnomalyConfig(progress=False, **{"holdout": 0.3, "fpr": 0.05, **kw})


@pytest.fixture(scope="module")
def detectors() -> dict[str, TableDetector]:
    normal = _normal(600, seed=0)
    return {
        s: fit_table_detector(normal, _cfg(), steps=STEPS, score=s) for s in ("knn", "mahalanobis")
    }


@pytest.mark.parametrize("score", ["knn", "mahalanobis"])
def test_separates_off_manifold_rows_at_the_target_fpr(detectors, score):
    det = detectors[score]
    assert det.config.score == score and det.info["score"] == score
    assert det.info["rows"] == 600 and det.info["trained_on"] == 420
    assert det.info["held_out"] == 180 and det.info["steps"] == STEPS
    assert det.info["held_out_fpr"] <= 0.05 + 1e-9
    normal, anomalous = _normal(300, seed=1), _anomalies(100, seed=2)
    scores = det.score(pd.concat([normal, anomalous], ignore_index=True))
    assert scores.shape == (400,) and torch.isfinite(scores).all()
    is_anomaly = torch.tensor([0] * 300 + [1] * 100)
    value = auroc(scores, is_anomaly)
    print(f"{score}: AUROC {value:.3f} on off-manifold rows")
    assert value > 0.9
    fresh = det.score(_normal(2000, seed=3))
    fpr = float(det.flag(fresh).float().mean())
    print(f"{score}: false-positive rate {fpr:.3f} on fresh normal rows (target 0.05)")
    assert fpr <= 2 * 0.05


def test_the_image_default_score_means_knn_and_csi_is_refused():
    normal = _normal(60, seed=4)
    det = fit_table_detector(normal, AnomalyConfig(progress=False), steps=2)
    assert det.config.score == "knn" and det.scorer.method == "knn"
    with pytest.raises(ValueError, match="--score knn"):
        fit_table_detector(normal, AnomalyConfig(progress=False), steps=2, score="csi")
    with pytest.raises(ValueError, match="knn"):
        fit_table_detector(normal, AnomalyConfig(progress=False), steps=2, score="lof")
    with pytest.raises(ValueError, match="steps"):
        fit_table_detector(normal, AnomalyConfig(progress=False), steps=0)
    with pytest.raises(ValueError, match="too few"):
        fit_table_detector(normal.iloc[:2], AnomalyConfig(progress=False, holdout=0.5), steps=1)


def test_save_load_round_trip_gives_identical_scores(detectors, tmp_path):
    from contrastkit.train.export import load_encoder

    det = detectors["mahalanobis"]
    det.save(tmp_path / "det")
    assert sorted(p.name for p in (tmp_path / "det").iterdir()) == [
        "detector.json",
        "detector.safetensors",
        "encoder.json",
        "encoder.safetensors",
    ]
    meta = json.loads((tmp_path / "det" / "detector.json").read_text())
    assert meta["format"] == "contrastkit-anomaly-detector/1" and meta["kind"] == "table"
    assert meta["scorer"]["method"] == "mahalanobis" and meta["config"]["score"] == "mahalanobis"
    assert meta["preprocessor"]["kind"] == "contrastkit.TablePreprocessor"
    assert meta["columns"]["numeric"] == ["a", "b", "c"]
    assert meta["columns"]["categorical"] == ["kind"]
    assert json.loads((tmp_path / "det" / "encoder.json").read_text())["encoder"] == "tabular_mlp"
    assert detector_kind(tmp_path / "det") == "table"
    query = pd.concat([_normal(20, seed=5), _anomalies(10, seed=6)], ignore_index=True)
    loaded = load_table_detector(tmp_path / "det")
    assert torch.equal(loaded.score(query), det.score(query))
    assert loaded.threshold == det.threshold and loaded.info["trained_on"] == 420
    # the encoder alone loads without the recipe and gives the detector's features
    enc = load_encoder(tmp_path / "det")
    x = det.rows(query)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), det.features(query))
    # a path to the folder works for score_table too
    assert score_table(tmp_path / "det", query)["rows_scored"] == 30


def test_csv_with_a_bad_value_and_an_unseen_category(tmp_path):
    normal = _normal(200, seed=7).astype({"a": object})
    normal.loc[5, "a"] = "abc"
    normal.insert(0, "customer_id", [f"c{i}" for i in range(200)])
    path = tmp_path / "normal.csv"
    normal.to_csv(path, index=False)
    with pytest.warns(UserWarning, match="not a number"):
        det = fit_table_detector(path, _cfg(), tmp_path / "det", steps=10)
    notes = " ".join(det.info["notes"])
    assert "'abc'" in notes and "customer_id" in notes  # the bad value, the identifier dropped
    assert det.columns["numeric"] == ["a", "b", "c"] and det.columns["categorical"] == ["kind"]
    new = _normal(30, seed=8).astype({"a": object, "kind": object})
    new.loc[0, "a"] = "abc"
    new.loc[1, "kind"] = "sideways"
    new["extra"] = 1.0  # a column the detector does not know is ignored
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bad value is warned about by the reader
        result = score_table(tmp_path / "det", new_path)
    assert result["rows_scored"] == result["images"] == 30 and len(result["rows"]) == 30
    assert [r["row"] for r in result["rows"]] == list(range(30))
    assert all(np.isfinite(r["score"]) for r in result["rows"])
    assert result["_images"] is None and result["_scores"].shape == (30,)
    assert result["flagged"] == sum(r["flag"] for r in result["rows"])
    assert "sideways" in " ".join(result["notes"])
    with pytest.raises(ValueError, match="columns the detector was fitted on"):
        score_table(det, new.drop(columns=["b"]))


def test_score_table_with_labels_gives_auroc(detectors):
    det = detectors["knn"]
    rows = pd.concat([_normal(80, seed=9), _anomalies(40, seed=10)], ignore_index=True)
    rows["status"] = ["ok"] * 80 + ["bad"] * 40
    result = score_table(det, rows, label_column="status", normal_values=["ok"])
    assert result["auroc"] > 0.9
    assert result["normal_values"] == result["normal_classes"] == ["ok"]
    assert 0.0 <= result["fpr_at_threshold"] <= 1.0 and 0.0 <= result["tpr_at_threshold"] <= 1.0
    assert result["_anomalous"].tolist() == [False] * 80 + [True] * 40
    assert result["rows"][0]["label"] == "ok" and result["rows"][-1]["label"] == "bad"
    # the label column is not a feature: its values do not change the scores
    flipped = rows.assign(status=["bad"] * 80 + ["ok"] * 40)
    again = score_table(det, flipped, label_column="status", normal_values=["ok"])
    assert torch.equal(again["_scores"], result["_scores"])
    assert abs(again["auroc"] - (1 - result["auroc"])) < 1e-9
    # numeric labels match as the reader names them
    numeric = rows.assign(status=[0] * 80 + [1] * 40)
    assert score_table(det, numeric, label_column="status", normal_values=[0])["auroc"] > 0.9
    lower = score_table(det, rows, threshold=-1e9)
    assert lower["flagged"] == 120 and lower["threshold"] == -1e9
    with pytest.raises(ValueError, match="together"):
        score_table(det, rows, label_column="status")
    with pytest.raises(ValueError, match="not values of"):
        score_table(det, rows, label_column="status", normal_values=["fine"])
    with pytest.raises(ValueError, match="feature of the detector"):
        score_table(det, rows, label_column="kind", normal_values=["up"])
    with pytest.raises(ValueError, match="both normal and anomalous"):
        score_table(det, rows.iloc[:80], label_column="status", normal_values=["ok"])
    gaps = rows.astype({"status": object})
    gaps.loc[3, "status"] = None
    with pytest.raises(ValueError, match="no label"):
        score_table(det, gaps, label_column="status", normal_values=["ok"])


def test_load_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="anomaly fit"):
        load_table_detector(tmp_path)
    (tmp_path / "detector.safetensors").write_bytes(b"")
    (tmp_path / "detector.json").write_text(json.dumps({"format": "something/2"}))
    with pytest.raises(ValueError, match="not a contrastkit anomaly detector"):
        load_table_detector(tmp_path)
    (tmp_path / "detector.json").write_text(
        json.dumps({"format": "contrastkit-anomaly-detector/1", "config": {}})
    )
    assert detector_kind(tmp_path) == "image"
    with pytest.raises(ValueError, match="image anomaly detector"):
        load_table_detector(tmp_path)
    (tmp_path / "detector.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_table_detector(tmp_path)


def test_is_table_source():
    assert is_table_source("normal.csv") and is_table_source("x.tsv.gz")
    assert is_table_source("rows.parquet") and is_table_source("breast_cancer")
    assert is_table_source(pd.DataFrame({"a": [1]}))
    assert not is_table_source("images/") and not is_table_source(3)


def test_breast_cancer_benign_as_normal():
    """sklearn's breast cancer table: fit on benign rows only, malignant rows as anomalies."""
    from contrastkit.data.tables import read_table

    raw = read_table("breast_cancer")
    frame = raw.frame.copy()
    frame["target"] = list(raw.target)
    benign = frame[frame["target"] == "benign"].reset_index(drop=True)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(benign), generator=g).numpy()
    cut = int(0.7 * len(benign))
    fit_rows = benign.iloc[perm[:cut]].drop(columns=["target"])
    test_rows = pd.concat(
        [benign.iloc[perm[cut:]], frame[frame["target"] == "malignant"]], ignore_index=True
    )
    det = fit_table_detector(fit_rows, _cfg(holdout=0.2), steps=40)
    result = score_table(det, test_rows, label_column="target", normal_values=["benign"])
    print(
        f"breast_cancer: AUROC {result['auroc']:.3f} (benign normal, {det.info['trained_on']} "
        f"training rows, {det.info['steps']} steps, {det.info['train_seconds']} s); flagged "
        f"{result['fpr_at_threshold']:.1%} of benign, {result['tpr_at_threshold']:.1%} of "
        f"malignant test rows"
    )
    assert result["auroc"] > 0.8
