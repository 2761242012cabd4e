"""ONNX export and int8 quantisation: what they cost in accuracy and what they gain in speed.

Three encoders, each measured as PyTorch float32, onnxruntime float32 and onnxruntime int8
(dynamic quantisation) in the same run:

- text: all-MiniLM-L6-v2 (pre-trained, as shipped) on the Lee corpus's 50×50 human
  document-similarity ratings (Spearman ρ of cosine similarities against the ratings), plus
  the sentence-transformers folder written by ``export_sentence_transformers``;
- image: a SmallCNN trained with SimCLR on scikit-learn's digits (train split, 30 epochs),
  kNN accuracy (k = 20, cosine) of the test split against the train split;
- table: a TabularMLP trained with SCARF on the breast-cancer table from scikit-learn (train
  split), kNN accuracy of the test split.

Times are the median of 5 passes over the whole evaluation set (one thread each, after a
warm-up), printed with the ratio to PyTorch float32. Nothing here selects anything: the
models and settings are fixed in this file.

Usage::

    python benchmarks/export_onnx.py [--out /tmp/export_onnx]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from contrastkit.app.deploy import OnnxEncoder, export_onnx, export_sentence_transformers
from contrastkit.evaluate.knn import knn_accuracy
from contrastkit.train.export import export_encoder


def timed(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def row(name: str, score: float, seconds: float, base: float, metric: str) -> None:
    print(
        f"  {name:<28} {metric} {score:.4f}   {seconds * 1e3:8.1f} ms   "
        f"speed ×{base / seconds:5.2f} vs PyTorch fp32",
        flush=True,
    )


def text_case(out: Path) -> None:
    from contrastkit.data.text import load_lee
    from contrastkit.encoders import minilm
    from contrastkit.evaluate.text import similarity_correlation

    lee = load_lee()
    docs = lee.documents
    enc = minilm(max_length=256).eval()
    export_encoder(enc, out / "minilm", "minilm")
    t0 = time.perf_counter()
    res = export_onnx(out / "minilm", out / "minilm_onnx", quantize=True)
    print(f"text: {res.summary()} ({time.perf_counter() - t0:.0f} s)", flush=True)
    st_report = export_sentence_transformers(out / "minilm", out / "minilm_st")
    print(f"  sentence-transformers round trip: max abs diff {st_report['max_abs_diff']:.1e}")

    def rho(emb) -> float:
        return similarity_correlation(torch.as_tensor(np.asarray(emb)), lee.similarity)["spearman"]

    with torch.no_grad():
        base_t = timed(lambda: enc.encode(docs, batch_size=50))
        base = rho(enc.encode(docs, batch_size=50))
    row("PyTorch fp32", base, base_t, base_t, "Lee Spearman")
    for name, int8 in (("onnxruntime fp32", False), ("onnxruntime int8", True)):
        runner = OnnxEncoder(out / "minilm_onnx", int8=int8, threads=1)
        t = timed(lambda r=runner: r.encode(docs, batch_size=50))
        row(name, rho(runner.encode(docs, batch_size=50)), t, base_t, "Lee Spearman")
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(out / "minilm_st"), device="cpu")
    t = timed(lambda: st.encode(docs, batch_size=50))
    row("sentence-transformers", rho(st.encode(docs, batch_size=50)), t, base_t, "Lee Spearman")


def _knn_rows(label: str, enc, runner_dir: Path, train_x, train_y, test_x, test_y, prep) -> None:
    with torch.no_grad():

        def torch_feats(x):
            return enc(prep(x)).float()

        base_t = timed(lambda: torch_feats(test_x))
        ftr, fte = torch_feats(train_x), torch_feats(test_x)
    base = knn_accuracy(ftr, train_y, fte, test_y, k=20)
    row("PyTorch fp32", base, base_t, base_t, f"{label} kNN acc")
    for name, int8 in (("onnxruntime fp32", False), ("onnxruntime int8", True)):
        runner = OnnxEncoder(runner_dir, int8=int8, threads=1)
        t = timed(lambda r=runner: r.run(test_x))
        a = knn_accuracy(
            torch.from_numpy(runner.run(train_x)),
            train_y,
            torch.from_numpy(runner.run(test_x)),
            test_y,
            k=20,
        )
        row(name, a, t, base_t, f"{label} kNN acc")


def image_case(out: Path) -> None:
    from contrastkit.data import load_digits
    from contrastkit.encoders import SmallCNN
    from contrastkit.recipes import SimCLR, SimCLRConfig
    from contrastkit.train import TrainConfig, Trainer

    data = load_digits()
    torch.manual_seed(0)
    enc = SmallCNN(in_channels=1, width=32, stages=2)
    recipe = SimCLR(enc, SimCLRConfig(image_size=8, channels=1, flip=0))
    cfg = TrainConfig(epochs=30, batch_size=256, lr=0.3, out_dir=str(out / "digits_run"))
    cfg.progress, cfg.monitor_every = False, 0
    t0 = time.perf_counter()
    Trainer(recipe, data.train, cfg).fit()
    enc = recipe.encoder.eval()
    export_encoder(enc, out / "digits", "small_cnn")
    res = export_onnx(out / "digits", out / "digits_onnx", quantize=True, image_size=8)
    print(f"image: {res.summary()} (training + export {time.perf_counter() - t0:.0f} s)")
    _knn_rows(
        "digits",
        enc,
        out / "digits_onnx",
        data.train.images,
        data.train.labels,
        data.test.images,
        data.test.labels,
        lambda x: x.float() / 255.0,
    )


def table_case(out: Path) -> None:
    from contrastkit.data.tables import load_table_splits
    from contrastkit.encoders import TabularMLP
    from contrastkit.recipes import SCARF, SCARFConfig
    from contrastkit.train import TrainConfig, Trainer

    data = load_table_splits("breast_cancer")
    torch.manual_seed(0)
    enc = TabularMLP(n_numeric=data.train.n_numeric, cardinalities=data.train.cardinalities)
    recipe = SCARF(enc, SCARFConfig(), reference=data.train.x)
    cfg = TrainConfig(epochs=50, batch_size=128, out_dir=str(out / "table_run"))
    cfg.progress, cfg.monitor_every = False, 0
    Trainer(recipe, data.train, cfg).fit()
    enc = recipe.encoder.eval()
    export_encoder(enc, out / "table", "tabular_mlp")
    res = export_onnx(out / "table", out / "table_onnx", quantize=True)
    print(f"table: {res.summary()}")
    _knn_rows(
        "breast-cancer",
        enc,
        out / "table_onnx",
        data.train.x,
        data.train.y,
        data.test.x,
        data.test.y,
        lambda x: x,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--cases", default="text,image,table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import onnxruntime as ort

    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, onnxruntime "
        f"{ort.__version__}, AMX {torch.cpu._is_amx_tile_supported()}, 1 thread",
        flush=True,
    )
    out = Path(args.out or tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    for case in args.cases.split(","):
        {"text": text_case, "image": image_case, "table": table_case}[case](out)


if __name__ == "__main__":
    main()
