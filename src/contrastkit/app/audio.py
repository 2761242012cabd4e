"""Audio in the one pipeline: loading and splits, the encoder and recipe, the evaluation.

Data (``data.name``, :func:`contrastkit.data.audio_sources.load_audio_data`):

- ``fsdd``: the Free Spoken Digit Dataset's 3,000 clips as MFCC frames. Self-supervised
  recipes train on every clip (labels unused) and the evaluation is a 5-fold
  cross-validation over all of them, choices made inside each training fold;
- ``spoken_words``: 200 words said by 12 espeak-ng voice variants; training on the first 8
  variants, the test on the 4 held-out voices;
- ``klettres``, a folder of audio files with one subfolder per class, or a CSV of clips and
  captions: 20% of the clips held out as the test split (stratified by class; seeded by
  ``train.seed``).

The encoder (``model.encoder``): ``audio_cnn`` (BYOL-A's CNN, the default) or
``audio_transformer``; on waveforms it carries a log-mel front end (16 kHz, 64 mel bins,
10 ms hop), so the exported encoder embeds raw audio. ``model.width`` > 1 sets its width.
The CLAP recipe's text tower is ``model.text_encoder``: ``char`` (characters: words never
seen in training still embed), ``minilm`` or ``small_text``.

Evaluation (:class:`~contrastkit.evaluate.protocols.audio.AudioProtocol`): linear probe,
few-label probe (10 clips per class) and kNN accuracy, audio→audio R@1, and for CLAP runs
text→audio and audio→text R@1, beside pooled MFCC statistics and chance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "AUDIO_ENCODERS",
    "AudioSplits",
    "audio_results",
    "build_audio_recipe",
    "embed_audio",
    "load_audio_splits",
]

#: ``model.encoder`` → registry name of the audio encoder
AUDIO_ENCODERS = {"audio_cnn": "audio_cnn", "audio_transformer": "audio_transformer"}
#: the front end of encoders trained on waveforms
FRONTEND = {"sample_rate": 16000, "n_fft": 1024, "hop_length": 160, "n_mels": 64}
SAMPLE_RATE = 16000


@dataclass
class AudioSplits:
    """An audio data set split for training: ``train`` (an AudioSet), ``val`` (None: the
    pipeline holds one out), ``test`` (None: cross-validation over ``train``), its name and
    protocol."""

    train: Any
    test: Any
    name: str
    protocol: str | None
    val: Any = None
    note: str = ""


def _stratified_test(data: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    from contrastkit.data.splits import stratified_split

    by = data.labels if data.labels is not None else len(data)
    keep, held = stratified_split(by, fraction, seed)
    return data.subset(keep), data.subset(held)


def load_audio_splits(name: str, cfg: Any = None) -> AudioSplits:
    """The audio data of ``name`` split for the pipeline (see the module docstring)."""
    from contrastkit.data.audio_sources import (
        HELD_OUT_VARIANTS,
        TRAIN_VARIANTS,
        load_audio_data,
        load_spoken_words,
    )

    seed = cfg.train.seed if cfg is not None else 0
    if name == "spoken_words":
        train = load_spoken_words("train", variants=list(TRAIN_VARIANTS))
        test = load_spoken_words("train", variants=list(HELD_OUT_VARIANTS))
        note = (
            f"test: the {len(HELD_OUT_VARIANTS)} held-out voices ({len(test)} clips); "
            f"training: {len(TRAIN_VARIANTS)} other voices."
        )
        return AudioSplits(train, test, "spoken_words", "audio", note=note)
    data = load_audio_data(name, sample_rate=SAMPLE_RATE)
    skipped = _skipped_note(data)
    if data.captions is not None and name not in ("spoken_words",):
        data.labels = None  # clips and captions: judged by retrieval, not by caption "classes"
        splits = _split_captions(data, seed)
        splits.note = " ".join(x for x in (splits.note, skipped) if x)
        return splits
    protocol = "audio" if data.labels is not None else None
    if name == "fsdd":
        return AudioSplits(data, None, data.name, protocol)
    if protocol is None:
        return AudioSplits(data, None, data.name, None, note=skipped)
    train, test = _stratified_test(data, 0.2, seed)
    note = f"test: {len(test)} clips held out of {data.name} (20%, seed {seed})."
    return AudioSplits(train, test, data.name, protocol, note=" ".join([note, skipped]).strip())


def _skipped_note(data: Any) -> str:
    """The files a loader could not use, in words (empty when none)."""
    if not data.skipped:
        return ""
    path, why = next(iter(data.skipped.items()))
    return (
        f"skipped {len(data.skipped)} unusable file(s) (e.g. {Path(path).name}: {why}); "
        "they are listed in the log."
    )


def _split_captions(data: Any, seed: int) -> AudioSplits:
    from contrastkit.app.splits import group_split

    keep, held = group_split(data.caption_groups(), 0.2, seed)
    if len(held) < 2:
        return AudioSplits(data, None, data.name, None)
    note = f"test: {len(held)} clips of captions held out of {data.name} (20%, seed {seed})."
    return AudioSplits(data.subset(keep), data.subset(held), data.name, "retrieval", note=note)


def _text_tower(cfg: Any, captions: list[str]) -> Any:
    from contrastkit.encoders import build_encoder

    m = cfg.model
    kind = m.text_encoder
    if kind == "char":
        width = int(m.text_width) if m.text_width > 1 else 256
        return build_encoder("char_text", out_dim=width), "char_text"
    if kind == "small_text":
        from contrastkit.encoders.text import SmallTextEncoder

        width = int(m.text_width) if m.text_width > 1 else 128
        return SmallTextEncoder.from_texts(captions, dim=width, layers=2, heads=4), "small_text"
    if kind == "minilm":
        from contrastkit.encoders.text import minilm

        return minilm(max_length=m.max_length), "minilm"
    raise ValueError(
        f"the clap recipe's text tower is --text-encoder char, minilm or small_text; got {kind!r}."
    )


def build_audio_recipe(cfg: Any, train: Any, data: Any) -> tuple[Any, Any, str]:
    """(resolved config, recipe, encoder name) of an audio recipe on ``train`` (an AudioSet)."""
    from contrastkit.data.audio import AudioSet
    from contrastkit.encoders import build_encoder

    cfg = cfg.resolved()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, compile=False))
    if not isinstance(train, AudioSet):
        raise ValueError(
            f"the {cfg.recipe.name} recipe trains on audio; give --data fsdd, spoken_words, "
            "klettres, a folder of audio files (one subfolder per class) or a CSV of clips "
            "and captions."
        )
    m = cfg.model
    name = "audio_cnn" if m.encoder == "resnet18" else m.encoder
    if name not in AUDIO_ENCODERS:
        raise ValueError(
            f"the {cfg.recipe.name} recipe trains an audio encoder: --encoder "
            f"{' or '.join(AUDIO_ENCODERS)}, got {m.encoder!r} (default audio_cnn)."
        )
    audio = train.audio
    kw: dict[str, Any] = {}
    if audio.is_wave:
        kw["frontend"] = dict(FRONTEND, sample_rate=int(audio.sample_rate))
        kw["n_features"] = FRONTEND["n_mels"]
        frames = _frames(audio, kw["frontend"])
    else:
        kw["n_features"] = int(audio.values.shape[2])
        frames = audio
    mean, std = _feature_stats(frames)
    kw["feature_mean"], kw["feature_std"] = mean, std
    if m.width > 1:
        kw["hidden" if name == "audio_cnn" else "dim"] = int(m.width)
    encoder = build_encoder(AUDIO_ENCODERS[name], **kw)
    recipe_cfg = cfg.recipe_config()
    if cfg.recipe.name == "byol_a" and not audio.is_wave:
        recipe_cfg = dataclasses.replace(recipe_cfg, mixup_domain="linear")
    if cfg.recipe.name == "clap":
        if train.captions is None:
            raise ValueError(
                "the clap recipe needs a caption per clip: give --data a CSV of clips and "
                "captions, or spoken_words (each clip's word is its caption)."
            )
        text, _ = _text_tower(cfg, list(train.captions))
        recipe = cfg.recipe_class(encoder, text, recipe_cfg)
    else:
        recipe = cfg.recipe_class(encoder, recipe_cfg)
    return cfg, recipe, AUDIO_ENCODERS[name]


def _frames(audio: Any, frontend: dict[str, Any], limit: int = 512) -> Any:
    """Frames of (at most ``limit``) clips through the front end, for statistics."""
    from contrastkit.data.spectral import LogMel

    rows = torch.arange(min(limit, len(audio)))
    return LogMel(**frontend)(audio.select(rows).to("cpu", dtype=torch.float32))


def _feature_stats(frames: Any) -> tuple[float, float]:
    """Mean and standard deviation over every valid frame value (BYOL-A's normalisation)."""
    mask = frames.mask()
    values = frames.values[mask]
    return float(values.mean()), float(values.std().clamp_min(1e-6))


def embed_audio(
    model: Any,
    audio: Any,
    batch_size: int = 256,
    device: Any = "cpu",
    forward: Any = None,
) -> Tensor:
    """(N, D) float32 CPU embeddings of an AudioBatch, ``batch_size`` clips at a time, with
    ``model`` in eval mode and no gradient; ``forward`` (default: ``model`` itself) maps a
    batch on ``device`` in the model's dtype to embeddings (a CLAP recipe's ``embed_audio``:
    its shared-space embeddings)."""
    from contrastkit.recipes._audio import encoder_dtype

    forward = model if forward is None else forward
    was = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(audio), batch_size):
            part = audio.select(torch.arange(s, min(s + batch_size, len(audio))))
            out.append(forward(part.to(device, dtype=encoder_dtype(model))).float().cpu())
    model.train(was)
    return torch.cat(out)


def _clap_embed(recipe: Any, audio: Any, batch_size: int = 256) -> Tensor:
    """(N, D) shared-space audio embeddings of a CLAP recipe."""
    device = recipe.audio_proj.weight.device
    return embed_audio(recipe, audio, batch_size, device, forward=recipe.embed_audio)


def audio_results(
    cfg: Any,
    recipe: Any,
    frozen: Any,
    data: Any,
    train: Any,
    val: Any,
    trainer: Any,
    results: dict[str, Any],
) -> None:
    """Evaluate an audio run with :class:`AudioProtocol`, fill ``results`` and write the
    report."""
    from contrastkit.evaluate.audio import pooled_mfcc_features
    from contrastkit.evaluate.protocols.audio import AudioProtocol

    device = trainer.device
    fit, test = train, data.test
    clap = cfg.recipe.name == "clap"
    embed = (
        (lambda rows: _clap_embed(recipe, rows.audio))
        if clap
        else (lambda rows: embed_audio(recipe.encoder, rows.audio, device=device))
    )
    if data.protocol == "retrieval":  # clips and captions: the test pairs retrieve each other
        from contrastkit.evaluate.protocols import get_protocol

        if not clap:
            results["summary"] = [
                f"no evaluation: {data.name} holds clips and captions without classes, which "
                "only an audio–text recipe (clap) is judged on."
            ]
            return
        result = get_protocol("retrieval", ks=(1, 5)).evaluate(
            embed(test),
            recipe.embed_texts(list(test.captions)).float().cpu(),
            a_name="audio",
            b_name="caption",
            ids=test.caption_groups(),
        )
        results["evaluation"] = result.to_dict()
        results["summary"] = [*result.format().splitlines(), data.note]
        return
    kw: dict[str, Any] = {"baseline": pooled_mfcc_features(fit.audio)}
    if test is not None:
        kw["test_features"] = embed(test)
        kw["test_labels"] = test.labels
        kw["test_baseline"] = pooled_mfcc_features(test.audio)
        if clap and test.captions is not None:
            kw["class_texts"] = recipe.embed_texts(list(test.classes)).float().cpu()
            kw["test_groups"] = test.groups
    fit_features = embed(fit)
    result = AudioProtocol(seed=cfg.train.seed).evaluate(fit_features, fit.labels, **kw)
    results["evaluation"] = result.to_dict()
    lines = result.format().splitlines()
    if getattr(data, "note", ""):
        lines.append(data.note)
    results["summary"] = lines
    if not cfg.eval.report:
        return
    from contrastkit.evaluate.report import metric_rows, write_report

    rows = test if test is not None else fit
    features = kw.get("test_features", fit_features)
    metrics: dict[str, Any] = metric_rows(lines[:4])
    metrics.update(
        {
            "recipe": cfg.recipe.name,
            "data": f"{data.name} ({len(fit)} training clips"
            + (f", {len(test)} test clips)" if test is not None else ", 5-fold CV)"),
            "encoder": getattr(recipe.encoder, "config", cfg.model.encoder),
            "epochs": trainer.epoch,
            "precision": trainer.precision,
        }
    )
    results["report"] = str(
        write_report(
            Path(cfg.train.out_dir) / "report.html",
            title=f"contrastkit {cfg.recipe.name} on {data.name}",
            metrics=metrics,
            history=results["history"],
            features=features,
            labels=rows.labels,
            classes=list(rows.classes) or None,
            maps=cfg.eval.report_maps,
            seed=cfg.train.seed,
        )
    )
