"""Audio from the command line: a folder of real recorded OGG files (Debian's klettres-data,
one subfolder per language) with an unreadable and an empty file trains BYOL-A and COLA and
is evaluated beside pooled MFCCs; a CSV of clips and captions (with a missing file, an
unreadable one and an empty caption) trains CLAP with the character text tower and is
evaluated by audio↔caption retrieval. Each run is one or two short epochs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from contrastkit.cli.main import app

KLETTRES = Path("/usr/share/klettres")


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _common(out) -> list[str]:
    return ["--out", str(out), "--no-progress", "--set", "train.tensorboard=false"]


def _klettres_folder(root: Path, per_class: int = 10) -> Path:
    """root/<language>/<clip>.ogg: real recordings of two languages, plus an unreadable and
    an empty file."""
    for lang in ("en", "fr"):
        files = sorted((KLETTRES / lang / "alpha").glob("*.ogg"))[:per_class]
        assert len(files) == per_class, f"klettres-data lacks {lang} (scripts/install-data)"
        (root / lang).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / lang / f.name)
    (root / "en" / "broken.ogg").write_bytes(b"this is not an ogg file" * 20)
    (root / "fr" / "empty.ogg").write_bytes(b"")
    return root


@pytest.mark.parametrize("recipe", ["byol_a", "cola"])
def test_a_folder_of_real_ogg_files_trains_and_is_evaluated(tmp_path, recipe):
    data = _klettres_folder(tmp_path / "letters")
    out = tmp_path / "run"
    extra = ["--set", "recipe.proj_hidden=64", "--set", "recipe.pred_hidden=64"]
    if recipe == "cola":
        extra = ["--set", "recipe.segment_seconds=0.4", "--set", "recipe.embed_dim=32"]
    r = _invoke(
        "train", "--recipe", recipe, "--data", str(data), "--epochs", "2",
        "--batch-size", "8", "--width", "64", *extra, *_common(out),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    ev = results["evaluation"]
    assert results["modality"] == "audio" and ev["protocol"] == "audio"
    assert ev["split"] == "test" and ev["baseline_name"] == "pooled MFCC"
    for key in ("probe_accuracy", "knn_accuracy", "audio2audio_recall@1"):
        assert 0.0 <= ev[f"metrics.{key}"] <= 1.0
        assert 0.0 <= ev[f"chance.{key}"] <= 1.0
    # 8 training clips a class: a 10-label probe would be the full probe, so none is reported
    assert "metrics.few_label_accuracy" not in ev
    assert 0.0 <= ev["baseline.probe_accuracy"] <= 1.0
    # 18 clips read, 2 skipped with a reason; the run says so
    assert results["data"]["train"] + ev["details.rows"] == 20
    text = "\n".join(results["summary"])
    assert "skipped 2 unusable file(s)" in text
    assert (out / "report.html").is_file()
    # the exported encoder embeds raw audio (its log-mel front end travels with it)
    import torch

    from contrastkit.data.audio import AudioBatch
    from contrastkit.train import load_encoder

    enc = load_encoder(out).eval()
    wave = AudioBatch(torch.randn(2, 8000) * 0.1, torch.tensor([8000, 6000]), 16000)
    with torch.no_grad():
        z = enc(wave)
    assert z.shape[0] == 2 and bool(torch.isfinite(z).all())


def _captions_csv(root: Path, n: int = 24) -> Path:
    """Tones of four pitches, captioned by their pitch; a missing file, an unreadable one and
    an empty caption."""
    import soundfile as sf

    root.mkdir()
    rng = np.random.default_rng(0)
    words = {220: "a low hum", 440: "a middle tone", 880: "a high beep", 1760: "a shrill whistle"}
    lines = ["path,caption"]
    for i in range(n):
        freq = list(words)[i % 4]
        t = np.arange(int(16000 * rng.uniform(0.3, 0.6))) / 16000
        wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(root / f"clip{i}.wav", wave.astype(np.float32), 16000)
        lines.append(f"clip{i}.wav,{words[freq]}")
    (root / "bad.wav").write_bytes(b"RIFF garbage")
    lines += ["missing.wav,a sound that is not there", "bad.wav,a broken file", "clip0.wav,"]
    path = root / "clips.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_csv_of_clips_and_captions_trains_clap(tmp_path):
    data = _captions_csv(tmp_path / "sounds")
    out = tmp_path / "run"
    r = _invoke(
        "train", "--recipe", "clap", "--data", str(data), "--text-encoder", "char",
        "--text-width", "32", "--width", "64", "--epochs", "2", "--batch-size", "8",
        "--set", "recipe.embed_dim=16", *_common(out),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    ev = results["evaluation"]
    assert ev["protocol"] == "retrieval" and ev["split"] == "test"
    assert ev["details.a_name"] == "audio" and ev["details.b_name"] == "caption"
    for key in ("a2b_recall@1", "b2a_recall@1", "mean_mrr"):
        assert 0.0 <= ev[f"metrics.{key}"] <= 1.0
    assert 0.0 < ev["baseline.a2b_recall@1"] <= 1.0  # chance beside it
    text = "\n".join(results["summary"])
    assert "skipped 3 unusable file(s)" in text  # missing, unreadable, empty caption


def test_a_folder_without_audio_says_what_it_expects(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    r = _invoke(
        "train", "--recipe", "cola", "--data", str(tmp_path / "empty"), "--epochs", "1",
        *_common(tmp_path / "run"),
    )  # fmt: skip
    assert r.exit_code != 0
    assert "<class>" in r.output
