"""The anomaly detector of ``contrastkit.app.anomaly`` without the CLI: the held-out draw, the
input shapes it accepts, save/load round trips for each score, and its errors."""

from __future__ import annotations

import json

import pytest
import torch

from contrastkit.app.anomaly import (
    AnomalyConfig,
    _fit_shape,
    fit_detector,
    holdout_split,
    load_detector,
)
from contrastkit.data.datasets import ImageSet


def _images(n: int = 48, size: int = 12, seed: int = 0) -> torch.Tensor:
    """Bright-top images (so rotations are learnable) with noise."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(255, 0, size).view(1, 1, size, 1).expand(n, 1, size, size)
    noise = torch.randint(0, 60, (n, 1, size, size), generator=g)
    return (ramp * 0.7 + noise).clamp(0, 255).to(torch.uint8)


def test_holdout_split_is_seeded_disjoint_and_complete():
    fit, held = holdout_split(50, 0.2, seed=3)
    assert len(held) == 10 and len(fit) == 40
    assert sorted(torch.cat([fit, held]).tolist()) == list(range(50))
    again = holdout_split(50, 0.2, seed=3)
    assert torch.equal(fit, again[0]) and torch.equal(held, again[1])
    assert not torch.equal(held, holdout_split(50, 0.2, seed=4)[1])
    with pytest.raises(ValueError, match="too few"):
        holdout_split(2, 0.5, seed=0)


def test_fit_shape_converts_channels_and_sizes():
    rgb = torch.randint(0, 256, (3, 3, 10, 14), dtype=torch.uint8)
    gray = _fit_shape(rgb, (1, 8, 8))
    assert gray.shape == (3, 1, 8, 8) and gray.dtype == torch.uint8
    assert _fit_shape(gray, (3, 8, 8)).shape == (3, 3, 8, 8)
    same = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    assert torch.equal(_fit_shape(same, (1, 8, 8)), same)
    with pytest.raises(ValueError, match="uint8"):
        _fit_shape(same.float(), (1, 8, 8))


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="csi"):
        AnomalyConfig(score="lof")
    with pytest.raises(ValueError, match="holdout"):
        AnomalyConfig(holdout=0.0)
    with pytest.raises(ValueError, match="fpr"):
        AnomalyConfig(fpr=1.5)
    with pytest.raises(ValueError, match="square"):
        fit_detector(torch.zeros(8, 1, 8, 12, dtype=torch.uint8), AnomalyConfig(progress=False))


@pytest.mark.parametrize("score", ["csi", "knn", "mahalanobis"])
def test_fit_save_load_gives_the_same_scores(score, tmp_path):
    normal = ImageSet(_images(), None)
    cfg = AnomalyConfig(score=score, epochs=2, batch_size=16, width=4, progress=False, holdout=0.25)
    det = fit_detector(normal, cfg, out_dir=tmp_path / "det")
    assert det.info["trained_on"] == 36 and det.info["held_out"] == 12
    assert det.info["held_out_fpr"] <= 0.05 + 1e-9
    query = _images(10, seed=5)
    scores = det.score(query)
    assert scores.shape == (10,) and torch.isfinite(scores).all()
    loaded = load_detector(tmp_path / "det")
    # the trained network runs channels_last, the loaded one contiguous: float32 rounding
    # differs by ~1e-6, which the shrunk precision of Mahalanobis can amplify to ~1e-4
    torch.testing.assert_close(loaded.score(query), scores, atol=1e-3, rtol=1e-3)
    assert loaded.threshold == det.threshold and loaded.config.score == score
    meta = json.loads((tmp_path / "det" / "detector.json").read_text())
    assert meta["scorer"]["method"] == score
    # a resized, RGB query is brought to the detector's shape
    big = (
        torch.nn.functional.interpolate(query.float(), size=24)
        .to(torch.uint8)
        .expand(-1, 3, -1, -1)
    )
    assert det.score(big.contiguous()).shape == (10,)


def test_load_detector_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="anomaly fit"):
        load_detector(tmp_path)
    (tmp_path / "detector.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "detector.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not a contrastkit anomaly detector"):
        load_detector(tmp_path)
