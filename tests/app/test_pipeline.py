"""The one pipeline: text pairs are evaluated with the retrieval protocol, a pre-trained start
is measured beside the trained encoder, unlabelled data trains without evaluation, and
results.json has the same keys for every modality."""

from __future__ import annotations

import copy
import json

import pytest

from contrastkit.app.config import RunConfig
from contrastkit.app.pipeline import MODALITIES, evaluate_run, run
from contrastkit.app.splits import split_validation
from contrastkit.app.text import build_text_recipe
from contrastkit.data.text import load_text_data

TOPICS = {
    "weather": ["rain falls all day", "a sunny warm morning", "snow on the hills", "cold wind"],
    "food": ["fresh bread and butter", "a spicy bowl of noodles", "sweet apple pie", "hot soup"],
    "sport": [
        "the team won the final",
        "a long run in the park",
        "he scored a goal",
        "a fast race",
    ],
}
SCHEMA = {"config", "modality", "data", "precision", "train_seconds", "epochs", "history"}
SCHEMA |= {"evaluation", "summary", "total_seconds"}


def _pairs(path):
    """(text, positive) rows: two phrasings of the same sentence."""
    rows = ["text,positive"]
    for i in range(24):
        for topic, sents in TOPICS.items():
            s = sents[i % 4]
            rows.append(f"{s} number {i},today {s} again {i} {topic}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _labelled(path):
    rows = ["text\tlabel"]
    for i in range(16):
        for label, sents in enumerate(TOPICS.values()):
            rows.append(f"{sents[i % 4]} {i}\t{label}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _cfg(data, out, recipe="simcse", **train):
    return RunConfig.from_dict(
        {
            "data": {"name": str(data), "val_size": 0.25},
            "model": {"encoder": "small_text", "width": 32},
            "recipe": {"name": recipe},
            "train": {"epochs": 1, "batch_size": 16, "out_dir": str(out), "progress": False}
            | train,
            "eval": {"report": False},
        }
    )


def test_text_pairs_are_evaluated_by_retrieval_beside_tfidf(tmp_path):
    res = run(_cfg(_pairs(tmp_path / "pairs.csv"), tmp_path / "run"))
    assert set(res) == SCHEMA and res["modality"] == "text"
    ev = res["evaluation"]
    assert ev["protocol"] == "retrieval" and ev["split"] == "val"
    assert ev["baseline_name"] == "TF-IDF"
    for key in ("a2b_recall@1", "b2a_recall@1", "a2b_mrr"):
        assert any(k.startswith("metrics.") and key in k for k in ev), sorted(ev)
        assert any(k.startswith("baseline.") and key in k for k in ev), sorted(ev)
    assert res["data"]["val"] == 18 and res["summary"] and "TF-IDF" in res["summary"][0]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["evaluation"] == ev


def test_unlabelled_text_trains_without_evaluation(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{s} {i}" for i in range(12) for v in TOPICS.values() for s in v))
    res = run(_cfg(corpus, tmp_path / "run"))
    assert set(res) == SCHEMA and res["evaluation"] is None
    assert res["summary"][0].startswith("no evaluation:")
    assert (tmp_path / "run" / "encoder.safetensors").exists()


def test_a_frozen_start_is_measured_beside_the_trained_encoder(tmp_path):
    cfg = _cfg(_labelled(tmp_path / "t.tsv"), tmp_path / "run", recipe="text_supcon").resolved()
    data = load_text_data(cfg.data.name)
    train, val = split_validation(data, 0.25, 0)
    recipe, _ = build_text_recipe(cfg, train.texts)
    frozen = copy.deepcopy(recipe.encoder).eval()
    result, features, rows = evaluate_run(
        cfg, MODALITIES["text"], "classification", recipe.encoder, train, val, None, frozen=frozen
    )
    # the same (untrained) encoder on both sides: the frozen figures equal the encoder's
    assert result.other_baselines["frozen encoder"] == pytest.approx(result.metrics)
    assert "chance" in result.other_baselines and result.baseline_name == "TF-IDF"
    assert features.shape[0] == len(rows) == len(val) and result.split == "val"


def test_protocols_the_pipeline_cannot_run_are_named(tmp_path):
    cfg = _cfg(_labelled(tmp_path / "t.tsv"), tmp_path / "run", recipe="text_supcon")
    with pytest.raises(ValueError, match="classification or retrieval"):
        evaluate_run(cfg, MODALITIES["text"], "ranking", None, None, None, None)
