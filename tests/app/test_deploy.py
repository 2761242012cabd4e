"""Deployable files: ONNX parity for every exportable encoder type (onnxruntime against PyTorch
on two batch sizes and two lengths/sizes), int8 quantisation, the runner, and the
sentence-transformers round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the [deploy] extra (onnx, onnxruntime) is missing")
pytest.importorskip("onnxscript", reason="the [deploy] extra (onnxscript) is missing")

from contrastkit.app.deploy import (
    OnnxEncoder,
    encoder_modality,
    export_onnx,
    export_sentence_transformers,
)
from contrastkit.encoders import (
    MLP,
    AudioCNN,
    AudioTransformer,
    PixelEncoder,
    SmallCNN,
    SmallTextEncoder,
    TabularMLP,
    TabularResNet,
    build_vocab,
    char_text,
    resnet18,
)
from contrastkit.train.export import export_encoder

TEXTS = ["a cat sat on the mat", "dogs bark", "the rain in spain", "hello world again"]


def _build(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "small_cnn":
        return SmallCNN(in_channels=1, width=8, stages=2)
    if kind == "resnet18":
        return resnet18(in_channels=3, small_input=True, width=0.25)
    if kind == "pixel":
        return PixelEncoder(in_channels=6, image_size=20, feature_dim=8, filters=8, layers=2)
    if kind == "tabular_mlp":
        return TabularMLP(n_numeric=3, cardinalities=[4, 2])
    if kind == "tabular_resnet":
        return TabularResNet(n_numeric=2, cardinalities=[5])
    if kind == "mlp":
        return MLP(in_dim=6, hidden=[16], out_dim=4)
    if kind == "audio_cnn":
        return AudioCNN(n_features=16, channels=(8, 8), hidden=32)
    if kind == "audio_cnn_wave":
        frontend = {"sample_rate": 8000, "n_fft": 256, "hop_length": 80, "n_mels": 16}
        return AudioCNN(n_features=16, channels=(8,), hidden=32, frontend=frontend)
    if kind == "audio_transformer":
        return AudioTransformer(n_features=16, dim=32, layers=1, heads=2, out_dim=8)
    if kind == "char_text":
        return char_text(width=32, blocks=1, out_dim=16, max_length=64)
    if kind in ("small_text_transformer", "small_text_bag"):
        vocab = build_vocab(TEXTS * 3)
        kw = dict(dim=16, layers=1, heads=2) if kind.endswith("transformer") else dict(dim=16)
        return SmallTextEncoder(vocab, kind=kind.rsplit("_", 1)[1], max_length=32, **kw)
    raise AssertionError(kind)


KINDS = {
    "small_cnn": "image",
    "resnet18": "image",
    "pixel": "image",
    "tabular_mlp": "table",
    "tabular_resnet": "table",
    "mlp": "vector",
    "audio_cnn": "audio",
    "audio_cnn_wave": "audio",
    "audio_transformer": "audio",
    "char_text": "text",
    "small_text_transformer": "text",
    "small_text_bag": "text",
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_onnx_matches_pytorch_on_two_batch_sizes_and_two_lengths(tmp_path, kind):
    enc = _build(kind).eval()
    assert encoder_modality(enc) == KINDS[kind]
    result = export_onnx(enc, tmp_path, image_size=16)
    assert result.max_abs_diff <= 1e-4
    shapes = [case["shape"][0] for case in result.parity]
    batches = {s[0] for s in shapes}
    assert len(batches) >= 2, shapes
    if KINDS[kind] in ("text", "audio") or kind in ("small_cnn", "resnet18"):
        assert len({tuple(s[1:]) for s in shapes}) >= 2, shapes  # two lengths / image sizes
    meta = json.loads((tmp_path / "onnx.json").read_text())
    assert meta["modality"] == KINDS[kind] and meta["output"]["shape"][1] == enc.out_dim
    assert meta["parity"]["max_abs_diff"] == result.max_abs_diff


def test_an_export_folder_runs_without_torch_modules_and_checks_its_files(tmp_path):
    torch.manual_seed(0)
    enc = char_text(width=32, blocks=1, out_dim=16, max_length=64).eval()
    export_encoder(enc, tmp_path / "run", "char_text")
    result = export_onnx(tmp_path / "run", tmp_path / "onnx", quantize=True)
    runner = OnnxEncoder(tmp_path / "onnx")
    with torch.no_grad():
        want = enc.encode(TEXTS).numpy()
    got = runner.encode(TEXTS)
    np.testing.assert_allclose(got, want, atol=1e-4)
    q = result.quantized
    assert q is not None and (tmp_path / "onnx" / "encoder.int8.onnx").is_file()
    assert 0.5 < q["mean_cosine"] <= 1.0 + 1e-6 and q["min_cosine"] <= q["mean_cosine"]
    got8 = OnnxEncoder(tmp_path / "onnx", int8=True).encode(TEXTS)
    cos = (got8 * want).sum(1) / np.linalg.norm(got8, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.9
    # a damaged graph is refused by its checksum
    path = tmp_path / "onnx" / "encoder.onnx"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="damaged"):
        OnnxEncoder(tmp_path / "onnx")


def test_image_runs_read_the_image_size_and_take_uint8(tmp_path):
    torch.manual_seed(0)
    enc = SmallCNN(in_channels=1, width=8, stages=2).eval()
    export_encoder(enc, tmp_path / "run", "small_cnn")
    (tmp_path / "run" / "results.json").write_text(
        json.dumps({"config": {"data": {"image_size": 12}}})
    )
    result = export_onnx(tmp_path / "run", tmp_path / "onnx")
    assert result.parity[0]["shape"] == [[1, 1, 12, 12]]
    images = torch.randint(0, 256, (3, 1, 12, 12), dtype=torch.uint8)
    with torch.no_grad():
        want = enc(images.float() / 255).numpy()
    np.testing.assert_allclose(OnnxEncoder(tmp_path / "onnx").run(images), want, atol=1e-5)
    meta = json.loads((tmp_path / "onnx" / "onnx.json").read_text())
    assert meta["inputs"] == [
        {"name": "images", "dtype": "uint8", "shape": ["batch", 1, "height", "width"]}
    ]


def test_encoders_without_an_onnx_form_are_refused_with_the_reason(tmp_path):
    vocab = build_vocab(TEXTS)
    gru = SmallTextEncoder(vocab, dim=16, layers=1, kind="gru")
    with pytest.raises(ValueError, match="GRU"):
        export_onnx(gru, tmp_path)
    pytest.importorskip("torch_geometric")
    from contrastkit.encoders import gin

    with pytest.raises(ValueError, match="graph encoders"):
        export_onnx(gin(in_dim=7, hidden=16, layers=2), tmp_path)


# ---- Hugging Face text encoders: a tiny BERT from MiniLM's tokenizer ---------------------------
@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer, BertConfig, BertModel

    from contrastkit.encoders import minilm_path

    try:
        source = minilm_path()
    except ImportError:
        pytest.skip("the [text] extra (all-MiniLM-L6-v2's package) is missing")
    folder = tmp_path_factory.mktemp("tiny_bert")
    tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
    tok.save_pretrained(str(folder))
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(str(folder))
    return folder


def test_a_hugging_face_text_encoder_exports_to_onnx_with_its_tokenizer(tmp_path, tiny_bert):
    from contrastkit.encoders import HFTextEncoder

    enc = HFTextEncoder(str(tiny_bert), max_length=48).eval()
    export_encoder(enc, tmp_path / "run", "hf_text")
    result = export_onnx(tmp_path / "run", tmp_path / "onnx")
    assert result.modality == "text" and result.max_abs_diff <= 1e-4
    assert len({tuple(c["shape"][0]) for c in result.parity}) == 4
    assert (tmp_path / "onnx" / "tokenizer" / "tokenizer.json").is_file()
    with torch.no_grad():
        want = enc.encode(TEXTS).numpy()
    np.testing.assert_allclose(OnnxEncoder(tmp_path / "onnx").encode(TEXTS), want, atol=1e-4)


@pytest.mark.parametrize(
    "pooling,normalize", [("mean", False), ("cls", True), ("max", False)], ids=str
)
def test_the_sentence_transformers_folder_gives_the_same_embeddings(
    tmp_path, tiny_bert, pooling, normalize
):
    st = pytest.importorskip("sentence_transformers")
    from contrastkit.encoders import HFTextEncoder

    enc = HFTextEncoder(str(tiny_bert), pooling=pooling, max_length=48, normalize=normalize)
    with torch.no_grad():  # weights that differ from the base model's: the export must carry them
        for p in enc.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    export_encoder(enc, tmp_path / "run", "hf_text")
    report = export_sentence_transformers(tmp_path / "run", tmp_path / "st")
    assert report["max_abs_diff"] <= 1e-5
    texts = ["a completely different sentence about trains", "short"]
    got = st.SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(texts)
    want = enc.eval().encode(texts).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_sentence_transformers_export_needs_a_hugging_face_encoder(tmp_path):
    enc = char_text(width=32, blocks=1, out_dim=16)
    with pytest.raises(ValueError, match="Hugging Face"):
        export_sentence_transformers(enc, tmp_path)
