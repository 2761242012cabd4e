"""The audio evaluation: the torch logistic probe against scikit-learn's, label retrieval
against an explicit loop, pooled MFCC statistics by hand, and the protocol's layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.data.audio import AudioBatch
from contrastkit.evaluate.audio import (
    _logistic,
    cv_knn,
    cv_probe,
    label_recall_at_k,
    pooled_mfcc_features,
)
from contrastkit.evaluate.protocols.audio import AudioProtocol


def _blobs(n_per: int = 30, classes: int = 4, dim: int = 6, noise: float = 0.6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per)
    centres = torch.randn(classes, dim, generator=g) * 2
    return centres[y] + noise * torch.randn(len(y), dim, generator=g), y


def test_torch_probe_agrees_with_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _blobs(noise=1.5)
    xs = StandardScaler().fit_transform(x.numpy())
    for c in (0.1, 1.0):
        ours = _logistic(c).fit(x.numpy(), y.numpy())
        ref = LogisticRegression(C=c, max_iter=5000, tol=1e-8).fit(xs, y.numpy())
        w = ours.w.numpy()  # (D, C) against sklearn's (C, D): logits equal up to a shift
        logits = xs @ w + ours.b.numpy()
        ref_logits = xs @ ref.coef_.T + ref.intercept_
        centred = logits - logits.mean(1, keepdims=True)
        ref_centred = ref_logits - ref_logits.mean(1, keepdims=True)
        assert np.abs(centred - ref_centred).max() < 2e-2 * np.abs(ref_centred).max()
        assert (ours.predict(x.numpy()) == ref.predict(xs)).mean() > 0.98


def test_label_recall_matches_a_loop():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(12, 5, generator=g), torch.randn(12, 5, generator=g)
    ql = torch.tensor([0, 0, 1, 1, 2, 2] * 2)  # every label twice: a hit besides itself
    kl = torch.randint(0, 3, (12,), generator=g)
    kl[:3] = torch.arange(3)  # every label has a key
    for exclude in (False, True):
        keys = q if exclude else k
        key_labels = ql if exclude else kl
        got = label_recall_at_k(q, keys, ql, key_labels, ks=(1, 3), exclude_self=exclude)
        hits1 = hits3 = 0
        for i in range(12):
            sim = torch.nn.functional.cosine_similarity(q[i : i + 1], keys)
            if exclude:
                sim[i] = -float("inf")
            order = sim.argsort(descending=True).tolist()
            if exclude:
                order = [j for j in order if j != i]
            labels = [int(key_labels[j]) for j in order]
            hits1 += labels[0] == int(ql[i])
            hits3 += int(ql[i]) in labels[:3]
        assert got["recall@1"] == pytest.approx(hits1 / 12)
        assert got["recall@3"] == pytest.approx(hits3 / 12)


def test_pooled_mfcc_of_frames_is_mean_and_std_over_valid_frames():
    values = torch.randn(2, 7, 3)
    values[1, 4:] = 0
    audio = AudioBatch(values, torch.tensor([7, 4]), 40.0)
    out = pooled_mfcc_features(audio)
    valid = values[1, :4]
    expected = torch.cat([valid.mean(0), valid.std(0, unbiased=False)])
    torch.testing.assert_close(out[1], expected)
    assert out.shape == (2, 6)


def test_pooled_mfcc_of_waveforms_uses_13_mfccs():
    t = torch.arange(8000) / 16000
    wave = torch.stack([torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 880 * t)])
    out = pooled_mfcc_features(AudioBatch(wave, torch.tensor([8000, 6000]), 16000))
    assert out.shape == (2, 26) and bool(torch.isfinite(out).all())


def test_cross_validated_figures_separate_easy_from_random_features():
    x, y = _blobs()
    good = cv_probe(x, y, folds=3, Cs=(0.1, 1.0))
    noise = cv_probe(torch.randn(len(y), 6), y, folds=3, Cs=(1.0,))
    assert good["accuracy"] > 0.95 > noise["accuracy"] + 0.3
    few = cv_probe(x, y, folds=3, shots=3, draws=2, Cs=(1.0,))
    assert few["shots"] == 3 and 0.5 < few["accuracy"] <= 1.0
    assert cv_knn(x, y, folds=3)["accuracy"] > 0.95


def test_protocol_layouts_and_the_few_label_rule():
    x, y = _blobs(n_per=20)
    cv = AudioProtocol(folds=2, shots=3, draws=1, Cs=(1.0,)).evaluate(x, y, baseline=x[:, :2])
    assert cv.split == "2-fold CV" and cv.baseline_name == "pooled MFCC"
    assert set(cv.metrics) >= {"probe_accuracy", "few_label_accuracy", "knn_accuracy"}
    assert cv.other_baselines["chance"]["probe_accuracy"] == pytest.approx(0.25)
    held = AudioProtocol(shots=30, Cs=(1.0,)).evaluate(
        x[::2], y[::2], test_features=x[1::2], test_labels=y[1::2]
    )
    assert held.split == "test" and "few_label_accuracy" not in held.metrics  # 10 a class
    texts = torch.randn(4, 6)
    with_text = AudioProtocol(shots=0, Cs=(1.0,)).evaluate(
        x[::2], y[::2], test_features=x[1::2], test_labels=y[1::2], class_texts=texts
    )
    assert {"text2audio_recall@1", "audio2text_recall@1"} <= set(with_text.metrics)
    assert with_text.other_baselines["chance"]["audio2text_recall@1"] == pytest.approx(0.25)


def test_pitch_averaged_embeddings_is_the_mean_over_resampled_clips():
    from contrastkit.augment.audio import speed_perturb
    from contrastkit.evaluate.audio import pitch_averaged_embeddings

    g = torch.Generator().manual_seed(0)
    audio = AudioBatch.from_clips([torch.randn(n, generator=g) for n in (900, 600, 1000)], 8000)
    proj = torch.randn(6, 5, generator=g, dtype=torch.float64)
    seen = []

    def embed(b):  # a deterministic "encoder": mean of 6 strided sums of the valid samples
        seen.append(b)
        x = (b.values * b.mask()).double()
        return (x[:, : 6 * (x.shape[1] // 6)].reshape(len(b), 6, -1).sum(2) @ proj).float()

    plain = pitch_averaged_embeddings(embed, audio, (0.0,))
    assert torch.allclose(plain, torch.nn.functional.normalize(embed(audio), dim=1))
    seen.clear()
    z = pitch_averaged_embeddings(embed, audio, (-3.0, 0.0, 3.0))
    assert torch.allclose(z.norm(dim=1), torch.ones(3))
    # lowering the pitch lengthens each clip: the batch was padded, no clip was cut
    low = seen[0]
    r = 2 ** (-3 / 12)
    expected = torch.floor((audio.lengths - 1) / r).long() + 1
    assert torch.equal(low.lengths, expected)
    manual = 0
    for s in (-3.0, 0.0, 3.0):
        b = audio
        if s < 0:
            b = b.with_values(
                torch.nn.functional.pad(b.values, (0, int(expected.max()) - 1000)), b.lengths
            )
        if s:
            b = speed_perturb(b, torch.full((3,), 2 ** (s / 12), dtype=torch.float64))
        manual = manual + torch.nn.functional.normalize(embed(b), dim=1)
    assert torch.allclose(z, torch.nn.functional.normalize(manual, dim=1), atol=1e-6)


def test_pitch_averaged_embeddings_rejects_frames_and_no_shifts():
    from contrastkit.evaluate.audio import pitch_averaged_embeddings

    frames = AudioBatch.from_clips([torch.randn(10, 4)], 100)
    with pytest.raises(ValueError, match="waveforms"):
        pitch_averaged_embeddings(lambda b: b.values.mean(1), frames)
    wave = AudioBatch.from_clips([torch.randn(100)], 100)
    with pytest.raises(ValueError, match="at least one shift"):
        pitch_averaged_embeddings(lambda b: b.values, wave, ())
