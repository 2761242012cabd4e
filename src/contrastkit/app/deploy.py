"""Deployable files of a trained encoder: ONNX graphs and sentence-transformers folders.

- :func:`export_onnx` writes ``encoder.onnx`` (torch's dynamo exporter, dynamic batch size and
  sequence length), checks it against onnxruntime on two batch sizes and two lengths (max abs
  difference ≤ ``atol``, else an error), optionally adds ``encoder.int8.onnx`` (onnxruntime's
  dynamic int8 quantisation) with its agreement with float32, and describes both in
  ``onnx.json``: the inputs (names, dtypes, dynamic axes), the preprocessing, the checks.
  Image, text, audio and table encoders export; graph and id (recommender) encoders do not
  (their inputs are PyG batches and id lookups, which have no standard ONNX form here).
- :class:`OnnxEncoder` runs such a folder with onnxruntime alone (texts are tokenised with the
  tokenizer saved beside the graph), without torch modules of contrastkit's.
- :func:`export_sentence_transformers` writes a folder that ``SentenceTransformer(path)`` loads
  (Transformer + Pooling (+ Normalize) modules) from a Hugging Face text encoder, giving the
  same embeddings.

The ONNX graphs' inputs:

======== ========================= ===========================================================
modality input                     meaning
======== ========================= ===========================================================
image    ``images`` uint8 (N,C,H,W) pixels 0–255 (scaled by 1/255 inside, as contrastkit does)
text     ``input_ids`` int64 (N,L)  token ids from the saved tokenizer, right-padded with the
                                    pad id (the mask is ``input_ids != pad_id``)
audio    ``features`` float (N,T,F) log-mel/MFCC frames (or ``waveforms`` (N,T) when the
         + ``lengths`` int64 (N,)   encoder has a front end), zero past each clip's length
table    ``rows`` float (N,F)       numeric columns, then categorical codes (as contrastkit's
                                    table loader writes them)
======== ========================= ===========================================================

The output is ``embeddings`` float32 (N, D).

Example:
    >>> from contrastkit.app.deploy import export_onnx, OnnxEncoder  # doctest: +SKIP
    >>> export_onnx("runs/simclr", "runs/simclr_onnx").max_abs_diff  # doctest: +SKIP
    3.5e-07
    >>> OnnxEncoder("runs/simclr_onnx").run(images).shape  # doctest: +SKIP
    (16, 512)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from contrastkit._checks import require_extra
from contrastkit._io import atomic_write_bytes, file_sha256

__all__ = [
    "EXPORTABLE",
    "QUANTIZED_OPS",
    "OnnxEncoder",
    "OnnxExport",
    "encoder_modality",
    "export_onnx",
    "export_sentence_transformers",
]

#: the modalities :func:`export_onnx` handles
EXPORTABLE = ("image", "text", "audio", "table")
#: the ops ``quantize=True`` quantises: matrix products and embedding lookups. Convolutions
#: stay float32: onnxruntime runs dynamically quantised convolutions (ConvInteger) on the CPU
#: about 5× slower than float ones (benchmarks/export_onnx.py), for no gain in size that
#: matters in a small CNN.
QUANTIZED_OPS = ("MatMul", "Gemm", "Attention", "Gather")
#: the texts the text parity check tokenises: short ones and long ones (two lengths)
_SHORT_TEXTS = ["a cat", "rain today", "hello there", "blue sky", "a red apple", "it works"]
_LONG_TEXTS = [
    "the quick brown fox jumps over the lazy dog while the farmer watches from the porch",
    "contrastive learning pulls two views of one example together and pushes others apart",
    "a small boat drifted across the quiet lake as the sun went down behind the hills",
    "she opened the old wooden box and found letters written by her grandmother long ago",
    "the train was late again, so everyone waited on the cold platform drinking coffee",
    "engineers measured the bridge every spring to see whether the cracks had grown at all",
]


# ---- what an encoder is -----------------------------------------------------------------------
def encoder_modality(encoder: nn.Module) -> str:
    """``image``, ``text``, ``audio``, ``table``, ``vector``, ``graph`` or ``ids``: what the
    encoder takes, read from its class."""
    from contrastkit.encoders import MLP, AudioCNN, AudioTransformer, TextEncoder
    from contrastkit.encoders.lightgcn import LightGCN
    from contrastkit.encoders.tabular import TabularMLP, TabularResNet

    if isinstance(encoder, TextEncoder):
        return "text"
    if isinstance(encoder, (AudioCNN, AudioTransformer)):
        return "audio"
    if isinstance(encoder, (TabularMLP, TabularResNet)):
        return "table"
    if isinstance(encoder, MLP):
        return "vector"
    if isinstance(encoder, LightGCN) or type(encoder).__name__ == "TwoTowerEncoder":
        return "ids"
    if type(encoder).__name__ in ("GIN", "GCN"):
        return "graph"
    return "image"


# ---- the graphs' modules: tensors in, embeddings out --------------------------------------------
class _ImageGraph(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: Tensor) -> Tensor:
        return self.encoder(images.float() / 255.0).float()


class _PlainGraph(nn.Module):
    """Text ids, table rows or vectors: the encoder's own forward."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x).float()


class _AudioGraph(nn.Module):
    def __init__(self, encoder: nn.Module, rate: float) -> None:
        super().__init__()
        self.encoder, self.rate = encoder, float(rate)

    def forward(self, values: Tensor, lengths: Tensor) -> Tensor:
        from contrastkit.data.audio import AudioBatch

        return self.encoder(AudioBatch(values, lengths, self.rate)).float()


# ---- the export ------------------------------------------------------------------------------
@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote and measured.

    Attributes:
        path: ``encoder.onnx``.
        modality: ``image``, ``text``, ``audio``, ``table`` or ``vector``.
        inputs: the graph's inputs: ``{"name", "dtype", "shape"}`` (named axes are dynamic).
        parity: one row per checked input: its shape and the max abs difference between
            onnxruntime and PyTorch.
        max_abs_diff: the largest of them.
        quantized: with ``quantize``: ``{"path", "max_abs_diff", "mean_cosine",
            "min_cosine", "size_mb"}`` of the int8 graph against PyTorch's float32.
        seconds: the export's wall time.
    """

    path: Path
    modality: str
    inputs: list[dict[str, Any]]
    parity: list[dict[str, Any]] = field(default_factory=list)
    max_abs_diff: float = 0.0
    quantized: dict[str, Any] | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        line = (
            f"{self.modality} encoder → {self.path} ({self.path.stat().st_size / 1e6:.1f} MB); "
            f"onnxruntime vs PyTorch on {len(self.parity)} input shapes: max abs diff "
            f"{self.max_abs_diff:.1e}"
        )
        if self.quantized:
            q = self.quantized
            line += (
                f"; int8: {q['size_mb']:.1f} MB, cosine to float32 mean {q['mean_cosine']:.4f} "
                f"(min {q['min_cosine']:.4f})"
            )
        return line


def _load(encoder: str | os.PathLike | nn.Module) -> tuple[nn.Module, Path | None, dict]:
    """The encoder module, its folder (None for a module) and the run's config (if any)."""
    if isinstance(encoder, nn.Module):
        return encoder.eval(), None, {}
    from contrastkit.train.export import load_encoder

    folder = Path(encoder)
    if folder.is_file():
        folder = folder.parent
    if (folder / "clip.json").is_file():
        raise ValueError(
            f"{folder} is an image–text (CLIP) run with two towers; export each tower: "
            f"--encoder {folder / 'image'} and --encoder {folder / 'text'}."
        )
    enc = load_encoder(folder)
    run: dict[str, Any] = {}
    results = folder / "results.json"
    if results.is_file():
        try:
            run = json.loads(results.read_text()).get("config", {}) or {}
        except ValueError:
            run = {}
    return enc.eval(), folder, run


def _image_size(encoder: nn.Module, run: dict, image_size: int | None) -> tuple[int, bool]:
    """The image side to check with, and whether H and W may vary."""
    fixed = getattr(encoder, "image_size", None)
    if fixed is not None:
        return int(fixed), False
    if image_size is None:
        data = run.get("data", {}) if isinstance(run, dict) else {}
        recipe = run.get("recipe", {}) if isinstance(run, dict) else {}
        image_size = data.get("image_size") or recipe.get("image_size") or 32
    return int(image_size), True


def _samples(
    encoder: nn.Module, modality: str, size: int, spatial: bool
) -> tuple[list[tuple[Tensor, ...]], list[str], dict[str, Any]]:
    """Parity inputs (two batch sizes × two lengths/sizes where they exist), the graph's input
    names, and their dynamic axes as {input: {axis: name}}."""
    g = torch.Generator().manual_seed(0)
    batches = (1, 5)
    if modality == "image":
        c = int(getattr(encoder, "config", {}).get("in_channels", 3))
        sizes = (size, size + max(8, size // 2)) if spatial else (size,)
        cases = [
            (torch.randint(0, 256, (n, c, s, s), generator=g, dtype=torch.uint8),)
            for n in batches
            for s in sizes
        ]
        axes = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
        return cases, ["images"], {"images": axes}
    if modality == "text":
        cases = []
        for n in batches:
            for texts in (_SHORT_TEXTS, _LONG_TEXTS):
                cases.append((encoder.tokenize(texts[:n]),))
        return cases, ["input_ids"], {"input_ids": {0: "batch", 1: "length"}}
    if modality == "audio":
        wave = encoder.input.frontend is not None
        if wave:
            rate = encoder.input._rate()
            lengths = (int(rate * 0.6), int(rate * 1.1))
        else:
            lengths = (23, 41)
        f = encoder.input.n_features
        cases = []
        for n in batches:
            for t in lengths:
                shape = (n, t) if wave else (n, t, f)
                values = torch.randn(shape, generator=g)
                lens = torch.full((n,), t, dtype=torch.long)
                if n > 1:  # padded clips beside the longest one
                    lens[1:] = torch.randint(max(1, t // 3), t + 1, (n - 1,), generator=g)
                mask = torch.arange(t)[None, :] < lens[:, None]
                values = values * (mask if wave else mask[..., None])
                cases.append((values, lens))
        name = "waveforms" if wave else "features"
        return cases, [name, "lengths"], {name: {0: "batch", 1: "length"}, "lengths": {0: "batch"}}
    if modality == "table":
        cards = list(encoder.cardinalities)
        cases = []
        for n in (*batches, 17):
            num = torch.randn(n, encoder.n_numeric, generator=g)
            codes = [torch.randint(0, c, (n, 1), generator=g).float() for c in cards]
            cases.append((torch.cat([num, *codes], dim=1),))
        return cases, ["rows"], {"rows": {0: "batch"}}
    if modality == "vector":
        d = int(encoder.config["in_dim"])
        cases = [(torch.randn(n, d, generator=g),) for n in (*batches, 17)]
        return cases, ["rows"], {"rows": {0: "batch"}}
    raise ValueError(_unsupported(modality))


def _unsupported(modality: str) -> str:
    why = {
        "graph": "graph encoders take PyG batches (message passing with scatter over edge lists), "
        "which have no ONNX form here; use `contrastkit embed` to write their embeddings",
        "ids": "id encoders (recommenders) are embedding tables: export their embeddings with "
        "`contrastkit recommend` / the run's recommender folder instead",
    }.get(modality, f"no ONNX export for {modality} encoders")
    return f"cannot export to ONNX: {why}. ONNX export covers {', '.join(EXPORTABLE)} encoders."


def _graph_module(encoder: nn.Module, modality: str) -> nn.Module:
    if modality == "image":
        return _ImageGraph(encoder)
    if modality == "audio":
        rate = encoder.input._rate() if encoder.input.frontend is not None else 0.0
        return _AudioGraph(encoder, rate)
    if modality == "text" and getattr(encoder, "kind", None) == "gru":
        raise ValueError(
            "cannot export to ONNX: this small_text encoder is a GRU over packed sequences, "
            "which the ONNX exporter cannot trace; train it with kind='transformer' or 'bag', "
            "or use a Hugging Face text encoder."
        )
    return _PlainGraph(encoder)


def _dynamic_shapes(
    names: list[str], axes: dict[str, dict[int, str]], encoder: nn.Module
) -> tuple[dict[int, Any], ...]:
    """torch.export's dynamic shapes, one dict per input in order (shared axis names are one
    dimension: all inputs have the same batch)."""
    from torch.export import Dim

    dims: dict[str, Any] = {}
    limits = {"length": getattr(encoder, "max_length", None)}
    lows = {"length": _min_length(encoder)}
    if type(encoder).__name__ == "AudioTransformer":
        limits["length"] = int(encoder.max_frames)
    out: list[dict[int, Any]] = []
    for name in names:
        spec = {}
        for axis, label in axes[name].items():
            if label not in dims:
                top, low = limits.get(label), lows.get(label, 1)
                dims[label] = Dim(label, min=low, max=int(top)) if top else Dim(label, min=low)
            spec[axis] = dims[label]
        out.append(spec)
    return tuple(out)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and the quantiser's log lines and warnings off inside the block (what
    matters is checked and reported by this module)."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "torch._export", "onnxscript", "")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _min_length(encoder: nn.Module) -> int:
    """The shortest input length an audio graph takes: the CNN's poolings must leave ≥ 2
    frames (a shorter clip is padded to it; its ``lengths`` entry keeps the true length, so
    its embedding is unchanged)."""
    frames = 1
    if type(encoder).__name__ == "AudioCNN":
        frames = 2 ** len(encoder.convs) + 1
    elif type(encoder).__name__ == "AudioTransformer":
        frames = 2 * int(encoder.patch_frames)
    front = getattr(getattr(encoder, "input", None), "frontend", None)
    if front is not None:
        return frames * int(front.hop_length)
    return frames


def _run_session(session: Any, names: list[str], case: tuple[Tensor, ...]) -> np.ndarray:
    return session.run(None, {n: t.numpy() for n, t in zip(names, case)})[0]


def _session(path: Path, threads: int | None = None) -> Any:
    ort = require_extra("onnxruntime", "deploy", "running ONNX graphs")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_onnx(
    encoder: str | os.PathLike | nn.Module,
    out: str | os.PathLike,
    *,
    quantize: bool = False,
    image_size: int | None = None,
    opset: int = 18,
    atol: float = 1e-4,
) -> OnnxExport:
    """Export an encoder to ``out/encoder.onnx`` and check it against onnxruntime.

    Args:
        encoder: an exported encoder's folder (``encoder.json`` + ``encoder.safetensors``, e.g.
            a ``contrastkit train`` run) or an encoder module.
        out: the folder to write: ``encoder.onnx``, ``onnx.json`` (inputs, preprocessing,
            checks, checksums), ``encoder.json`` (the source's description) and, for text,
            ``tokenizer/`` (Hugging Face encoders) so that :class:`OnnxEncoder` can tokenise.
        quantize: also write ``encoder.int8.onnx`` (dynamic int8 quantisation of the matrix
            products' weights) and measure how far its embeddings are from float32's.
        image_size: the side of the images to check with (default: the run's image size, or
            the encoder's own; else 32). Height and width stay dynamic where the encoder
            allows it.
        opset: the ONNX opset.
        atol: the largest max abs difference between onnxruntime and PyTorch accepted.

    Raises:
        ValueError: a graph or id encoder (no ONNX form), or onnxruntime differs from PyTorch
            by more than ``atol`` (the file is left for inspection; ``onnx.json`` is not
            written).
        ImportError: the ``[deploy]`` extra (onnx, onnxruntime, onnxscript) is missing.

    Example:
        >>> export_onnx("runs/simclr", "runs/simclr_onnx", quantize=True)  # doctest: +SKIP
    """
    require_extra("onnx", "deploy", "ONNX export")
    require_extra("onnxscript", "deploy", "ONNX export (torch's dynamo exporter)")
    t0 = time.perf_counter()
    enc, folder, run = _load(encoder)
    enc = enc.float().cpu().eval()
    modality = encoder_modality(enc)
    if modality not in (*EXPORTABLE, "vector"):
        raise ValueError(_unsupported(modality))
    size, spatial = _image_size(enc, run, image_size)
    cases, names, axes = _samples(enc, modality, size, spatial)
    module = _graph_module(enc, modality).eval()
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "encoder.onnx"
    example = max(cases, key=lambda c: c[0].shape[0] * c[0][0].numel())  # batch > 1
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            module,
            example,
            input_names=names,
            output_names=["embeddings"],
            dynamic_shapes=_dynamic_shapes(names, axes, enc),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        program.save(str(path))
    session = _session(path)
    parity, worst = [], 0.0
    with torch.no_grad():
        for case in cases:
            want = module(*case).numpy()
            got = _run_session(session, names, case)
            diff = float(np.abs(got - want).max()) if want.size else 0.0
            parity.append({"shape": [list(t.shape) for t in case], "max_abs_diff": diff})
            worst = max(worst, diff)
    if worst > atol:
        raise ValueError(
            f"the ONNX graph in {path} differs from PyTorch by {worst:.2e} (> atol {atol:g}) on "
            f"{parity}; this is an exporter problem: try another --opset, and report it."
        )
    inputs = [
        {
            "name": n,
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": [axes[n].get(i, int(s)) for i, s in enumerate(t.shape)],
        }
        for n, t in zip(names, cases[0])
    ]
    result = OnnxExport(path, modality, inputs, parity, worst)
    if quantize:
        result.quantized = _quantize(path, dest / "encoder.int8.onnx", module, names, cases)
    if folder is not None:
        shutil.copyfile(folder / "encoder.json", dest / "encoder.json")
    elif hasattr(enc, "config"):
        meta = {"encoder": None, "config": getattr(enc, "config", {}), "out_dim": enc.out_dim}
        atomic_write_bytes(dest / "encoder.json", json.dumps(meta, indent=2, default=str).encode())
    tokenizer = None
    if modality == "text" and hasattr(enc, "tokenizer"):
        enc.tokenizer.save_pretrained(str(dest / "tokenizer"))
        tokenizer = "tokenizer"
    result.seconds = time.perf_counter() - t0
    files = ["encoder.onnx"] + (["encoder.int8.onnx"] if quantize else [])
    meta = {
        "format": "onnx",
        "modality": modality,
        "inputs": inputs,
        "output": {"name": "embeddings", "dtype": "float32", "shape": ["batch", enc.out_dim]},
        "preprocessing": _preprocessing(enc, modality),
        "normalized": bool(getattr(enc, "normalize", False)),
        "tokenizer": tokenizer,
        "pad_id": getattr(enc, "pad_id", None),
        "opset": opset,
        "parity": {"atol": atol, "max_abs_diff": worst, "cases": parity},
        "quantized": result.quantized and {**result.quantized, "path": "encoder.int8.onnx"},
        "versions": _versions(),
        "sha256": {f: file_sha256(dest / f) for f in files},
    }
    atomic_write_bytes(dest / "onnx.json", json.dumps(meta, indent=2, default=str).encode())
    return result


def _preprocessing(encoder: nn.Module, modality: str) -> str:
    if modality == "image":
        return "uint8 pixels (N, C, H, W); the graph scales them by 1/255"
    if modality == "text":
        return (
            "token ids from the tokenizer saved here (tokenizer/, or the encoder's own vocabulary "
            "in encoder.json), right-padded with pad_id; at most max_length tokens"
        )
    if modality == "audio":
        low = _min_length(encoder)
        pad = f"padded to at least {low} {{}} (lengths keep each clip's true length)"
        if encoder.input.frontend is not None:
            return (
                f"mono waveforms at {encoder.input._rate():g} Hz, zero past each clip's length, "
                + pad.format("samples")
            )
        return "frame features (N, T, F) as in training, zero past each clip's length, " + (
            pad.format("frames")
        )
    return "numeric columns then categorical codes, as contrastkit's table loader encodes them"


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"torch": torch.__version__}
    for name in ("onnx", "onnxruntime", "onnxscript", "contrastkit"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def _quantize(
    path: Path, dest: Path, module: nn.Module, names: list[str], cases: list[tuple[Tensor, ...]]
) -> dict[str, Any]:
    """Dynamic int8 quantisation (weights int8, activations quantised on the fly) and its
    agreement with PyTorch's float32 embeddings on the parity inputs."""
    qmod = require_extra("onnxruntime.quantization", "deploy", "int8 quantisation")
    onnx = require_extra("onnx", "deploy", "int8 quantisation")
    # the quantiser re-runs shape inference; intermediate shapes some exporter versions
    # annotate wrongly (seen: torch 2.11) make it fail, so it starts from the graph without them
    bare = onnx.load(str(path))
    bare.graph.ClearField("value_info")
    source = dest.with_suffix(".source.onnx")
    onnx.save(bare, str(source))
    try:
        with _quiet():
            qmod.quantize_dynamic(
                str(source),
                str(dest),
                weight_type=qmod.QuantType.QInt8,
                op_types_to_quantize=list(QUANTIZED_OPS),
            )
    finally:
        source.unlink(missing_ok=True)
    session = _session(dest)
    diffs, cosines = [], []
    with torch.no_grad():
        for case in cases:
            want = module(*case).numpy()
            got = _run_session(session, names, case)
            diffs.append(float(np.abs(got - want).max()))
            num = (got * want).sum(1)
            den = np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1) + 1e-12
            cosines.extend((num / den).tolist())
    return {
        "path": str(dest),
        "max_abs_diff": max(diffs),
        "mean_cosine": float(np.mean(cosines)),
        "min_cosine": float(np.min(cosines)),
        "size_mb": dest.stat().st_size / 1e6,
    }


# ---- running an export -----------------------------------------------------------------------
class OnnxEncoder:
    """An ONNX export (``export_onnx``'s folder) run with onnxruntime.

    Args:
        folder: the export's folder.
        int8: run ``encoder.int8.onnx`` instead of the float32 graph.
        threads: onnxruntime's intra-op threads (default: its own choice, the cores).

    ``run(*arrays)`` feeds the graph's inputs; ``encode(texts)`` tokenises first (text
    exports). Checksums in ``onnx.json`` are verified on load.

    Example:
        >>> enc = OnnxEncoder("runs/minilm_onnx")  # doctest: +SKIP
        >>> enc.encode(["a cat sits on the mat"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self, folder: str | os.PathLike, int8: bool = False, threads: int | None = None
    ) -> None:
        from contrastkit.train.checkpoint import damaged

        self.folder = Path(folder)
        meta_path = self.folder / "onnx.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{self.folder} holds no onnx.json; export one with `contrastkit export "
                f"--encoder RUN --format onnx --out {self.folder}`."
            )
        self.meta = json.loads(meta_path.read_text())
        name = "encoder.int8.onnx" if int8 else "encoder.onnx"
        path = self.folder / name
        if not path.is_file():
            hint = " (export with --quantize)" if int8 else ""
            raise FileNotFoundError(f"{path} does not exist{hint}.")
        want = self.meta.get("sha256", {}).get(name)
        if want and file_sha256(path) != want:
            raise damaged(path, "its sha256 differs from the one in onnx.json")
        self.session = _session(path, threads)
        self.names = [i["name"] for i in self.meta["inputs"]]
        self.modality = self.meta["modality"]
        self._tokenizer: Any = None

    def run(self, *arrays: Any) -> np.ndarray:
        """The graph's inputs (numpy arrays or tensors, in ``onnx.json``'s order) →
        (N, D) float32 embeddings."""
        if len(arrays) != len(self.names):
            raise ValueError(f"the graph takes {self.names}; got {len(arrays)} arrays.")
        feed = {}
        for spec, a in zip(self.meta["inputs"], arrays):
            a = a.numpy() if isinstance(a, Tensor) else np.asarray(a)
            feed[spec["name"]] = a.astype(spec["dtype"], copy=False)
        return self.session.run(None, feed)[0]

    def tokenize(self, texts: list[str]) -> np.ndarray:
        """Texts → (N, L) int64 ids with the export's tokenizer (text exports)."""
        if self.modality != "text":
            raise ValueError(f"this export embeds {self.modality}, not texts; use run().")
        if self._tokenizer is None:
            if self.meta.get("tokenizer"):
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(
                    str(self.folder / self.meta["tokenizer"]), local_files_only=True
                )
                tok.padding_side = "right"
                limit = json.loads((self.folder / "encoder.json").read_text())["config"]
                self._tokenizer = lambda t: tok(
                    t,
                    padding="longest",
                    truncation=True,
                    max_length=int(limit.get("max_length", 128)),
                    return_tensors="np",
                    return_attention_mask=False,
                    return_token_type_ids=False,
                )["input_ids"]
            else:  # contrastkit's own vocabularies live in encoder.json's config
                from contrastkit.encoders import build_encoder

                meta = json.loads((self.folder / "encoder.json").read_text())
                enc = build_encoder(meta["encoder"], **meta["config"])
                self._tokenizer = lambda t: enc.tokenize(list(t)).numpy()
        return np.asarray(self._tokenizer(list(texts)), dtype=np.int64)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Texts → (N, D) float32 embeddings (text exports), in batches."""
        out = [
            self.run(self.tokenize(texts[i : i + batch_size]))
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.meta["output"]["shape"][1]))


# ---- sentence-transformers -------------------------------------------------------------------
def export_sentence_transformers(
    encoder: str | os.PathLike | nn.Module, out: str | os.PathLike, *, atol: float = 1e-5
) -> dict[str, Any]:
    """Write a sentence-transformers folder (``SentenceTransformer(out)`` loads it) from a
    Hugging Face text encoder, and check that it gives the same embeddings.

    The folder holds the transformer (weights, config, tokenizer) at its top level, a
    ``1_Pooling`` module with the encoder's pooling (mean, cls or max), a ``2_Normalize``
    module when the encoder normalises, ``modules.json``, ``sentence_bert_config.json``
    (``max_seq_length`` = the encoder's ``max_length``) and ``contrastkit.json`` (the source
    and the check).

    Returns:
        ``{"path", "max_abs_diff", "texts"}``: the largest difference between
        ``SentenceTransformer(out).encode`` and the encoder's own ``encode`` on the check's
        texts (short and long ones).

    Raises:
        ValueError: not a Hugging Face text encoder (contrastkit's own small text encoders
            have no sentence-transformers module), or the round trip differs by more than
            ``atol``.

    Example:
        >>> export_sentence_transformers("runs/simcse", "runs/simcse_st")  # doctest: +SKIP
        >>> from sentence_transformers import SentenceTransformer  # doctest: +SKIP
        >>> SentenceTransformer("runs/simcse_st").encode(["a sentence"]).shape  # doctest: +SKIP
        (1, 384)
    """
    from contrastkit.encoders import HFTextEncoder

    enc, _, _ = _load(encoder)
    if not isinstance(enc, HFTextEncoder):
        raise ValueError(
            f"--format sentence-transformers takes a Hugging Face text encoder (hf_text, minilm); "
            f"this is {type(enc).__name__} ({encoder_modality(enc)}). Use --format onnx instead: "
            f"it covers contrastkit's own text encoders too."
        )
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    enc = enc.float().cpu().eval()
    enc.model.save_pretrained(str(dest), safe_serialization=True)
    enc.tokenizer.save_pretrained(str(dest))
    dim = int(enc.out_dim)
    pool = dest / "1_Pooling"
    pool.mkdir(exist_ok=True)
    pooling = {
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": enc.pooling == "cls",
        "pooling_mode_mean_tokens": enc.pooling == "mean",
        "pooling_mode_max_tokens": enc.pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    _write_json(pool / "config.json", pooling)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if enc.normalize:
        (dest / "2_Normalize").mkdir(exist_ok=True)
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    _write_json(dest / "modules.json", modules)
    _write_json(
        dest / "sentence_bert_config.json",
        {"max_seq_length": int(enc.max_length), "do_lower_case": False},
    )
    _write_json(
        dest / "config_sentence_transformers.json",
        {"similarity_fn_name": "cosine", "model_type": "SentenceTransformer"},
    )
    st = require_extra("sentence_transformers", "deploy", "the sentence-transformers check")
    texts = _SHORT_TEXTS + _LONG_TEXTS
    loaded = st.SentenceTransformer(str(dest), device="cpu")
    got = loaded.encode(texts, convert_to_numpy=True, batch_size=len(texts))
    want = enc.encode(texts, batch_size=len(texts)).numpy()
    diff = float(np.abs(got - want).max())
    report = {"path": str(dest), "max_abs_diff": diff, "texts": len(texts), "atol": atol}
    _write_json(dest / "contrastkit.json", {"source": str(encoder), "check": report})
    if diff > atol:
        raise ValueError(
            f"the sentence-transformers folder {dest} gives embeddings {diff:.2e} away from the "
            f"encoder's (> {atol:g}); its pooling or tokenizer settings differ: report this."
        )
    return report


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2).encode())


def onnx_export_dict(result: OnnxExport) -> dict[str, Any]:
    """``result`` as JSON-ready data (paths as strings)."""
    d = asdict(result)
    d["path"] = str(result.path)
    return d
