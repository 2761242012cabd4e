"""A fuzz test of the command line: every option of ``train``, ``evaluate``, ``embed``, ``index``
and ``search``, as the commands declare them, gets values of the wrong type, missing and
malformed files, corrupt encoder and index folders; each command also gets unknown options,
and ``train`` bad ``--set`` pairs and malformed config files.

Every outcome must be a success (exit code 0) or one line ``error: ...`` with exit code 2,
never a traceback. Usage errors found by click (a value of the wrong type, an unknown option)
are printed in the same one-line form by the CLI's command group, so one rule covers all.

The cases are generated from the click commands (``typer.main.get_command``), so a new option
is fuzzed without touching this file. ``train`` cases run with ``--print-config`` first (the
options are parsed and checked, nothing is trained); a value it accepts is then tried in a tiny
real run (small_cnn, a 36-image folder, 1 epoch, batch 8), as are the values of the options
only a run reads (:data:`RUN_KEYS`). On/off flags take no value and stop at --print-config.
The report's 2-D maps are replaced by a stand-in (t-SNE / UMAP would take most of the time).
The number of cases shows in ``pytest -q`` (one test per case).
"""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from contrastkit.cli.main import app

#: the commands fuzzed; embed twice: on images, and on texts ("embed-text")
COMMANDS = ("train", "evaluate", "embed", "embed-text", "index", "search")

#: the values every option gets ({name} is a file or folder made by the ``files`` fixture)
VALUES = (
    "abc",
    "-1",
    "0",
    "1e309",
    "nan",
    "",
    str(10**40),
    "{missing}",
    "{dir}",
    "{bad.json}",
    "{bad.toml}",
    "{bad.yaml}",
    "{binary}",
)

#: what the options that name a file or folder get besides (corrupt or mismatched folders)
FOLDERS = (
    "{enc_bad_json}",
    "{enc_flipped}",
    "{enc_no_weights}",
    "{enc_no_json}",
    "{enc_unknown_arch}",
    "{image_encoder}",
    "{text_encoder}",
    "{idx_bad_json}",
    "{idx_flipped}",
    "{idx_no_embeddings}",
    "{idx_lost_encoder}",
    "{images}",
    "{texts.txt}",
)

#: train's options that are only read by a run (the others are checked by --print-config)
RUN_KEYS = ("--data", "--encoder", "--out", "--device", "--recipe", "--width")

#: train's options a run need not be tried with (--print-config shows all they do)
NO_RUN = ("--print-config", "--resume", "--overwrite", "--progress", "--report", "--config")

#: options that write where they point: their cases get a fresh copy of the files
WRITES = ("--out", "--report")

#: train's options that name a file or folder
PATH_OPTIONS = {"--config", "--data", "--out", "--encoder", "--report", "--index"}

SET_PAIRS = (
    "nope=1",
    "train.nope=1",
    "nope.lr=1",
    "train.lr",
    "=1",
    "train.=1",
    "train.lr=",
    "train.lr=abc",
    "train.lr=nan",
    "train.lr=1e309",
    "train.epochs=1.5",
    "train.epochs=-1",
    "train.batch_size=0",
    "data.val_size=2",
    "eval.knn_select_k=a,b",
    "eval.report_maps=pca",
    "recipe.temperature=-1",
    "recipe.name=nope",
    "seed=abc",
)

CONFIG_FILES = {
    "empty.json": "",
    "list.json": "[1, 2]",
    "null.json": "null",
    "scalar.yaml": "3\n",
    "section_scalar.yaml": "train: 3\n",
    "unknown_section.toml": "[nope]\na = 1\n",
    "unknown_key.json": '{"train": {"nope": 1}}',
    "wrong_type.json": '{"train": {"epochs": "three"}}',
    "nested_wrong.yaml": "train:\n  lr: [1, 2]\n",
    "deep.json": '{"train": {"lr": {"a": {"b": 1}}}}',
    "bad_recipe.toml": '[recipe]\nname = "nope"\n',
    "unknown.ini": "[train]\nepochs=1\n",
}


def _options(command: str) -> list:
    return typer.main.get_command(app).commands[command].params


def _cases() -> list:
    """(command, fuzzed option or case kind, args) for every case; ids show them."""
    cases = []
    for command in COMMANDS:
        for param in _options(command.partition("-")[0]):
            if param.param_type_name == "argument":
                name = param.name
                cases += [
                    pytest.param(command, name, [v], id=f"{command}-{name}-{v}") for v in VALUES
                ]
                continue
            flag = param.opts[0]
            if getattr(param, "is_flag", False):
                decls = [*param.opts, *param.secondary_opts]
                vals = [[d] for d in decls] + [[f"{decls[0]}=abc"], [decls[0], "abc"]]
            else:
                values = list(VALUES)
                if (command != "train" or flag in PATH_OPTIONS) and flag not in WRITES:
                    values += FOLDERS  # (an output path needs only VALUES' kinds of path)
                vals = [[flag, v] for v in values] + [[flag]]  # the last: no value at all
            cases += [pytest.param(command, flag, v, id=f"{command}-{' '.join(v)}") for v in vals]
        for v in (["--bogus", "1"], ["--bogus"], ["extra"], ["-"]):
            cases.append(pytest.param(command, "unknown", v, id=f"{command}-unknown-{' '.join(v)}"))
    for pair in SET_PAIRS:
        cases.append(pytest.param("train", "--set", ["--set", pair], id=f"train-set-{pair}"))
    for name in CONFIG_FILES:
        cases.append(
            pytest.param(
                "train", "--config", ["--config", "{" + name + "}"], id=f"train-config-{name}"
            )
        )
    return cases


CASES = _cases()

#: train's on/off flags: they take no value, so --print-config shows all they do
TRAIN_FLAGS = tuple(p.opts[0] for p in _options("train") if getattr(p, "is_flag", False))


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 8] = bytes(b ^ 0xFF for b in data[mid : mid + 8])
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The files and folders the cases name: tiny data, encoders, an index, broken copies."""
    from PIL import Image

    from contrastkit.app.text import build_search_index
    from contrastkit.encoders import SmallCNN
    from contrastkit.encoders.text import SmallTextEncoder, build_vocab
    from contrastkit.train import export_encoder

    tmp = tmp_path_factory.mktemp("fuzz")
    f: dict[str, Path] = {"missing": tmp / "missing", "dir": tmp / "a_dir"}
    f["dir"].mkdir()
    for name, text in {
        "bad.json": '{"train": {',
        "bad.toml": "[train\nepochs=",
        "bad.yaml": "train: [1, 2\n  x: : y\n",
        **CONFIG_FILES,
    }.items():
        (tmp / name).write_text(text)
        f[name] = tmp / name
    f["binary"] = tmp / "binary.bin"
    f["binary"].write_bytes(bytes(range(256)) * 4)

    rng = np.random.default_rng(0)
    f["images"] = tmp / "images"  # train/ and test/ of 3 classes, 8x8 gray
    for part, n in (("train", 9), ("test", 3)):
        for c in range(3):
            (f["images"] / part / f"c{c}").mkdir(parents=True)
            for i in range(n):
                pixels = (rng.random((8, 8)) * 60 + c * 90).astype("uint8")
                Image.fromarray(pixels).save(f["images"] / part / f"c{c}" / f"{i}.png")
    texts = [f"{w} film number {i}" for i in range(12) for w in ("good", "poor")]
    f["texts.txt"] = tmp / "texts.txt"
    f["texts.txt"].write_text("\n".join(texts) + "\n")

    f["image_encoder"] = tmp / "image_encoder"
    export_encoder(SmallCNN(in_channels=1, width=4, stages=2), f["image_encoder"], "small_cnn")
    f["text_encoder"] = tmp / "text_encoder"
    export_encoder(SmallTextEncoder(build_vocab(texts), dim=16), f["text_encoder"], "small_text")
    for name, change in {
        "enc_bad_json": lambda d: (d / "encoder.json").write_text("{not json"),
        "enc_flipped": lambda d: _flip(d / "encoder.safetensors"),
        "enc_no_weights": lambda d: (d / "encoder.safetensors").unlink(),
        "enc_no_json": lambda d: (d / "encoder.json").unlink(),
        "enc_unknown_arch": lambda d: (d / "encoder.json").write_text(
            json.dumps({**json.loads((d / "encoder.json").read_text()), "encoder": "nope"})
        ),
    }.items():
        f[name] = tmp / name
        shutil.copytree(f["image_encoder"], f[name])
        change(f[name])

    f["index"] = tmp / "index"
    build_search_index(str(f["text_encoder"]), str(f["texts.txt"]), str(f["index"]))
    emb = next(f["index"].glob("embeddings-*.safetensors")).name

    def lose_encoder(d: Path) -> None:
        meta = json.loads((d / "index.json").read_text())
        meta["meta"]["encoder"] = str(tmp / "gone")
        (d / "index.json").write_text(json.dumps(meta))

    for name, change in {
        "idx_bad_json": lambda d: (d / "index.json").write_text("{not json"),
        "idx_flipped": lambda d: _flip(d / emb),
        "idx_no_embeddings": lambda d: (d / emb).unlink(),
        "idx_lost_encoder": lose_encoder,
    }.items():
        f[name] = tmp / name
        shutil.copytree(f["index"], f[name])
        change(f[name])
    f["work"] = tmp / "work"
    f["work"].mkdir()
    return {k: str(v) for k, v in f.items()}


def _base(command: str, f: dict[str, str]) -> dict[str, list[str]]:
    """Valid options of each command, by option (a fuzzed option replaces its own); train's
    make a tiny real run."""
    out = f["work"] + "/out"
    if command == "train":
        return {
            "--data": ["--data", f["images"]],
            "--encoder": ["--encoder", "small_cnn"],
            "--epochs": ["--epochs", "1"],
            "--batch-size": ["--batch-size", "8"],
            "--out": ["--out", out],
            "--overwrite": ["--overwrite"],
            "--report": ["--no-report"],
            "--progress": ["--no-progress"],
            "--linear-probe": ["--no-linear-probe"],
        }
    if command == "embed-text":
        return {
            "--encoder": ["--encoder", f["text_encoder"]],
            "--data": ["--data", f["texts.txt"]],
            "--out": ["--out", out + ".npy"],
        }
    if command in ("evaluate", "embed"):
        base = {"--encoder": ["--encoder", f["image_encoder"]], "--data": ["--data", f["images"]]}
        if command == "embed":
            base["--out"] = ["--out", out + ".npy"]
        return base
    if command == "index":
        return {
            "--data": ["--data", f["texts.txt"]],
            "--out": ["--out", out],
            "--encoder": ["--encoder", f["text_encoder"]],
        }
    return {"--index": ["--index", f["index"]], "query": ["good film"]}


def _fill(args: list[str], f: dict[str, str]) -> list[str]:
    out = []
    for a in args:
        if a.startswith("{") and a.endswith("}") and a[1:-1] in f:
            a = f[a[1:-1]]
        elif a.startswith("--") and "={" in a:
            flag, _, name = a.partition("={")
            a = f"{flag}={f.get(name[:-1], name[:-1])}"
        out.append(a)
    return out


@pytest.fixture(scope="module")
def quick_maps():
    """The report's t-SNE/UMAP maps replaced by the first two coordinates (speed only)."""
    import contrastkit.evaluate.report as report

    mp = pytest.MonkeyPatch()
    mp.setattr(report, "embedding_map", lambda x, method="tsne", seed=0: x[:, :2].float().numpy())
    yield
    mp.undo()


@pytest.mark.parametrize(("command", "option", "args"), CASES)
def test_fuzz_case_succeeds_or_says_one_line(
    command, option, args, files, quick_maps, monkeypatch, tmp_path
):
    if option in WRITES:  # the case may write into one of the files: give it its own copies
        shutil.copytree(Path(files["work"]).parent, tmp_path / "f")
        files = {
            k: str(tmp_path / "f" / Path(v).relative_to(Path(files["work"]).parent))
            for k, v in files.items()
        }
    monkeypatch.chdir(files["work"])  # a relative path ("abc") lands in the scratch folder
    if command == "train" and option not in RUN_KEYS:
        if _invoke(["train", "--print-config", *_fill(args, files)]) != 0:
            return  # refused in one line before any run
        if option in NO_RUN + TRAIN_FLAGS:
            return
        # accepted: see what a tiny run makes of the value
    base = _base(command, files)
    base.pop(option, None)
    tail = base.pop("query", [])
    argv = [*[a for v in base.values() for a in v], *_fill(args, files), *tail]
    _invoke([command.partition("-")[0], *argv])


def _invoke(argv: list[str]) -> int:
    """Run ``contrastkit argv`` in-process; assert: exit code 0, or 2 with one line ``error:
    ...``, and no traceback; return the exit code."""
    r = CliRunner().invoke(app, argv)
    lines = [line for line in r.output.splitlines() if line.strip()]
    exc = r.exception if not isinstance(r.exception, SystemExit) else None
    shown = (
        f"exit {r.exit_code} {type(exc).__name__ if exc else ''}: {exc or (lines or [''])[0]}\n"
        f"contrastkit {' '.join(argv)}\n{r.output}"
    )
    if exc is not None:
        shown += "".join(traceback.format_exception(exc))
    assert exc is None and "Traceback" not in r.output, shown
    if r.exit_code != 0:
        assert r.exit_code == 2, shown
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > 8, shown
    return r.exit_code


def test_every_command_and_option_is_fuzzed():
    """The cases cover each option of the five commands; the count is in the ids above."""
    seen = {(c, o) for c, o, _ in (p.values for p in CASES)}
    for command in COMMANDS:
        for param in _options(command.partition("-")[0]):
            key = param.name if param.param_type_name == "argument" else param.opts[0]
            assert (command, key) in seen, (command, key)
    assert len(CASES) > 500
