"""The one pipeline: data → recipe → trainer → evaluation protocol → results.json, report.

``contrastkit train`` runs :func:`run` for every modality. What differs between modalities is
a :class:`Modality` (how to load the data, build the encoder and recipe, compute the baseline
features and show rows in the report), registered in :data:`MODALITIES`; the rest is shared:

1. load the data set and hold a validation split out of its training split (stratified by
   label; the online kNN monitor and every choice made after training use it);
2. build the recipe and train it (:class:`~contrastkit.train.Trainer`, its callbacks export
   the encoder);
3. evaluate the trained encoder with the data set's protocol
   (:mod:`contrastkit.evaluate.protocols`) on the official test split, or on the validation
   split where the data set has no test split, with the modality's baseline (raw pixels,
   TF-IDF, the frozen pre-trained encoder) measured in the same run;
4. write ``results.json`` (one schema for every modality: ``config``, ``data``, ``history``,
   ``evaluation`` = the protocol's flat result, ``summary`` = its lines in words) and
   ``report.html``.

Example:
    >>> import tempfile
    >>> from contrastkit.app.config import ConfigError, RunConfig, note
    >>> from contrastkit.app.pipeline import run
    >>> cfg = RunConfig.from_dict({"data": {"name": "digits"},
    ...                            "train": {"epochs": 1, "batch_size": 128,
    ...                                      "out_dir": tempfile.mkdtemp(), "progress": False},
    ...                            "eval": {"linear_probe": False, "report": False}})
    >>> results = run(cfg)
    >>> results["evaluation"]["protocol"], results["evaluation"]["baseline_name"]
    ('classification', 'raw pixels')
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contrastkit import distributed as dist
from contrastkit.app.config import ConfigError, RunConfig, note
from contrastkit.app.splits import split_validation
from contrastkit.encoders import build_encoder
from contrastkit.evaluate import classification_report, extract_features
from contrastkit.evaluate.protocols import ProtocolResult, get_protocol
from contrastkit.evaluate.report import metric_rows
from contrastkit.train import Trainer
from contrastkit.train.checkpoint import atomic_write_bytes
from contrastkit.train.trainer import RESUME_MAY_CHANGE as TRAIN_MAY_CHANGE

__all__ = [
    "MODALITIES",
    "RESUME_MAY_CHANGE",
    "RUN_FILES",
    "Modality",
    "build_recipe",
    "check_out_dir",
    "config_differences",
    "evaluate_run",
    "evaluate_transformed",
    "run",
]


@dataclass
class Modality:
    """What the pipeline needs to know of one kind of data.

    Attributes:
        name: the modality (``"image"``, ``"text"``), as a recipe's ``modality`` names it.
        load: (data name, run config or None) → splits with ``train``, ``test`` (or None),
            ``name`` and ``protocol`` (a registry name, or None when the data supports no
            evaluation).
        build: (config, training part, splits) → (resolved config, recipe, encoder name).
        baseline: (fit rows, *other row sets) → (name in words, features of each set); the
            baseline is fitted on the fit rows only (TF-IDF's vocabulary).
        report_rows: a row set → the keyword the report shows it with (``images=`` ...).
        frozen_baseline: also evaluate the untrained encoder (a pre-trained start).
        holds_out_val: hold a validation split out of the training rows when the loader made
            none; False trains on every row (graphs and nodes: self-supervised on everything,
            evaluated by cross-validation that chooses inside each training fold).
        results: (config, recipe, frozen encoder, data, train, val, trainer, results) →
            None: a modality that evaluates itself (graphs, tables, recommenders) fills
            ``results`` (evaluation, summary, report) here; None uses the data's protocol on
            embeddings of the rows.
    """

    name: str
    load: Callable[[str], Any]
    build: Callable[[RunConfig, Any, Any], tuple[RunConfig, Any, str]]
    baseline: Callable[..., tuple[str, list[Tensor]]]
    report_rows: Callable[[Any], dict[str, Any]]
    frozen_baseline: Callable[[RunConfig], bool] = lambda cfg: False
    rows_word: str = "rows"  # what a row is called in messages: "images", "texts"
    holds_out_val: bool = True
    results: Callable[..., None] | None = None


# ------------------------------------------------------------------------------- images
def _load_images(name: str, cfg: RunConfig | None = None) -> Any:
    from contrastkit.data import load_dataset

    return load_dataset(name)


def build_recipe(
    cfg: RunConfig, image_shape: tuple[int, int, int], num_classes: int | None = None
) -> tuple[Any, str]:
    """Build the encoder and recipe for images of shape (C, H, W); return (recipe, encoder name).

    The recipe's ``image_size``, ``channels`` and ``num_classes`` left unset come from the
    data (:meth:`RunConfig.resolved`). With ``cfg.model.init_encoder`` the encoder is loaded
    from an exported folder (fine-tuning).
    """
    cfg = cfg.resolved(image_shape, num_classes)
    m = cfg.model
    c, h, _ = image_shape
    small = m.small_input if m.small_input is not None else h <= 64
    if m.init_encoder:
        from contrastkit.train import load_encoder

        enc = load_encoder(m.init_encoder).train()
        name = json.loads((Path(m.init_encoder) / "encoder.json").read_text())["encoder"]
    elif m.encoder.startswith("resnet"):
        enc = build_encoder(m.encoder, in_channels=c, small_input=small, width=m.width)
    elif m.encoder == "small_cnn":
        enc = build_encoder(m.encoder, in_channels=c, width=int(max(8, m.width * 128)))
    elif m.encoder == "mlp":
        enc = build_encoder(m.encoder, in_dim=c * h * h, hidden=(512,), out_dim=256)
    else:
        enc = build_encoder(m.encoder, in_channels=c)
    name = name if m.init_encoder else m.encoder
    return cfg.recipe_class(enc, cfg.recipe_config()), name


def _build_image(cfg: RunConfig, train: Any, data: Any) -> tuple[RunConfig, Any, str]:
    classes = len(data.train.classes) or None
    cfg = cfg.resolved(train.image_shape, classes)
    recipe, name = build_recipe(cfg, train.image_shape, classes)
    return cfg, recipe, name


def _raw_pixels(fit: Any, *others: Any) -> tuple[str, list[Tensor]]:
    return "raw pixels", [rows.images.flatten(1).float() for rows in (fit, *others)]


# -------------------------------------------------------------------------------- texts
@dataclass
class _TextSplits:
    train: Any
    test: Any
    name: str
    protocol: str | None


def _load_texts(name: str, cfg: RunConfig | None = None) -> _TextSplits:
    from contrastkit.data.text import load_text_data

    data = load_text_data(name)
    return _TextSplits(data, None, data.name, data.protocol)


def _build_text(cfg: RunConfig, train: Any, data: Any) -> tuple[RunConfig, Any, str]:
    from contrastkit.app.text import build_text_recipe

    # text batches change length every step: no torch.compile
    cfg = cfg.resolved()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, compile=False))
    recipe, name = build_text_recipe(cfg, train.texts)
    return cfg, recipe, name


def _tfidf(fit: Any, *others: Any) -> tuple[str, list[Tensor]]:
    from contrastkit.evaluate.text import tfidf_features

    texts = [list(rows.texts) for rows in (fit, *others)]
    pos = [list(rows.positives) for rows in (fit, *others) if rows.positives is not None]
    # pairs: the positives are embedded too (retrieval), after the texts, in the same space
    features = tfidf_features(texts[0], *texts[1:], *pos)
    return "TF-IDF", list(features)


# ------------------------------------------------------------------------- image–text
def _load_image_text(name: str, cfg: RunConfig | None = None) -> Any:
    from contrastkit.app.image_text import load_image_text_data

    size = cfg.recipe_config().image_size if cfg is not None else 64
    seed = cfg.train.seed if cfg is not None else 0
    return load_image_text_data(name, size, seed=seed)


def _build_image_text(cfg: RunConfig, train: Any, data: Any) -> tuple[RunConfig, Any, str]:
    from contrastkit.app.image_text import build_clip_recipe

    cfg = cfg.resolved(tuple(train.images.shape[1:]))
    # captions change length every step: no torch.compile
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, compile=False))
    recipe, name = build_clip_recipe(cfg, train)
    return cfg, recipe, name


def _no_baseline(*rows: Any) -> tuple[str, list[Tensor]]:
    raise NotImplementedError("image–text and graph runs are evaluated by their app module")


# ------------------------------------------------------------------------ graphs, nodes
def _load_graphs(name: str, cfg: RunConfig | None = None) -> Any:
    from contrastkit.app.graph import load_graph_splits

    return load_graph_splits(name, cfg)


def _build_graph(cfg: RunConfig, train: Any, data: Any) -> tuple[RunConfig, Any, str]:
    from contrastkit.app.graph import build_graph_recipe

    return build_graph_recipe(cfg, train, data)


# -------------------------------------------------------------------------------- tables
def _load_table(name: str, cfg: RunConfig | None = None) -> Any:
    from contrastkit.app.tabular import load_table_data

    return load_table_data(name, cfg)


def _build_table(cfg: RunConfig, train: Any, data: Any) -> tuple[RunConfig, Any, str]:
    from contrastkit.app.tabular import build_table_recipe

    return build_table_recipe(cfg, train, data)


def _table_results(*args: Any) -> None:
    from contrastkit.app.tabular import table_results

    table_results(*args)


# -------------------------------------------------------------------------- interactions
def _load_interactions(name: str, cfg: RunConfig | None = None) -> Any:
    from contrastkit.app.interactions import load_interaction_splits

    return load_interaction_splits(name, cfg)


def _build_interactions(cfg: RunConfig, train: Any, data: Any) -> tuple[RunConfig, Any, str]:
    from contrastkit.app.interactions import build_interaction_recipe

    return build_interaction_recipe(cfg, train, data)


def _interaction_results(*args: Any) -> None:
    from contrastkit.app.interactions import interaction_results

    interaction_results(*args)


# --------------------------------------------------------------------------------- audio
def _load_audio(name: str, cfg: RunConfig | None = None) -> Any:
    from contrastkit.app.audio import load_audio_splits

    return load_audio_splits(name, cfg)


def _build_audio(cfg: RunConfig, train: Any, data: Any) -> tuple[RunConfig, Any, str]:
    from contrastkit.app.audio import build_audio_recipe

    return build_audio_recipe(cfg, train, data)


def _audio_results(*args: Any) -> None:
    from contrastkit.app.audio import audio_results

    audio_results(*args)


def _graph_rows(rows: Any) -> dict[str, Any]:
    smiles = getattr(rows, "smiles", None)
    return {"texts": list(smiles)} if smiles else {}


#: protocols that evaluate rows without class labels (pairs, interactions)
_UNLABELLED = ("retrieval", "ranking")

MODALITIES: dict[str, Modality] = {
    "image": Modality(
        "image",
        _load_images,
        _build_image,
        _raw_pixels,
        lambda rows: {"images": rows.images},
        rows_word="images",
    ),
    "text": Modality(
        "text",
        _load_texts,
        _build_text,
        _tfidf,
        lambda rows: {"texts": list(rows.texts)},
        frozen_baseline=lambda cfg: cfg.model.encoder not in ("small_text", "small_bag"),
        rows_word="texts",
    ),
    "image_text": Modality(
        "image_text",
        _load_image_text,
        _build_image_text,
        _no_baseline,
        lambda rows: {"images": rows.images},
        frozen_baseline=lambda cfg: True,
        rows_word="pairs",
    ),
    "graph": Modality(
        "graph",
        _load_graphs,
        _build_graph,
        _no_baseline,
        _graph_rows,
        frozen_baseline=lambda cfg: True,
        rows_word="graphs",
        holds_out_val=False,
        results=lambda *args: _graph_results(*args),
    ),
    "node": Modality(
        "node",
        _load_graphs,
        _build_graph,
        _no_baseline,
        lambda rows: {},
        frozen_baseline=lambda cfg: True,
        rows_word="nodes",
        holds_out_val=False,
        results=lambda *args: _graph_results(*args),
    ),
    "table": Modality(
        "table",
        _load_table,
        _build_table,
        _no_baseline,
        lambda rows: {},
        results=_table_results,
    ),
    "interactions": Modality(
        "interactions",
        _load_interactions,
        _build_interactions,
        _no_baseline,
        lambda rows: {},
        rows_word="interactions",
        results=_interaction_results,
    ),
    "audio": Modality(
        "audio",
        _load_audio,
        _build_audio,
        _no_baseline,
        lambda rows: {},
        rows_word="clips",
        holds_out_val=False,
        results=_audio_results,
    ),
}


# --------------------------------------------------------------------------- evaluation
def _embed(encoder: torch.nn.Module, rows: Any, **kw: Any) -> Tensor:
    return extract_features(encoder, rows.encoder_inputs(), **kw)


def _embed_pairs(encoder: torch.nn.Module, rows: Any, **kw: Any) -> tuple[Tensor, Tensor]:
    return (
        extract_features(encoder, list(rows.texts), **kw),
        extract_features(encoder, list(rows.positives), **kw),
    )


def evaluate_run(
    cfg: RunConfig,
    modality: Modality,
    protocol: str,
    encoder: torch.nn.Module,
    train: Any,
    val: Any,
    test: Any | None,
    *,
    frozen: torch.nn.Module | None = None,
    **embed_kw: Any,
) -> tuple[ProtocolResult, Tensor, Any]:
    """Evaluate ``encoder`` with ``protocol`` on ``test`` (or ``val`` when there is no test
    split), the modality's baseline beside it; returns (result, the evaluated rows'
    embeddings, the evaluated rows).

    Classification: the kNN bank and the probe's data are the training rows (and, with a test
    split, the validation rows, which choose k); without a test split the figures are on the
    validation rows and k is chosen on a part of the training rows. Retrieval: each text must
    find its positive among the evaluated rows' positives.
    """
    ev, tc = cfg.eval, cfg.train
    on_test = test is not None
    rows = test if on_test else val
    split = "test" if on_test else "val"
    if protocol == "classification":
        sets = [train, val, test] if on_test else [train, val]
        base_name, base = modality.baseline(*sets)
        feats = [_embed(encoder, s, **embed_kw) for s in sets]
        p = get_protocol(
            "classification",
            ks=tuple(ev.knn_select_k) or (tc.knn_k,),
            temperature=tc.knn_temperature,
            probe=ev.linear_probe,
            seed=tc.seed,
        )

        def classify(f: list[Tensor], b: list[Tensor] | None, name: str) -> ProtocolResult:
            kw: dict[str, Any] = {"split": split, "baseline_name": name}
            if on_test:
                kw.update(val_features=f[1], val_labels=val.labels)
                if b is not None:
                    kw.update(baseline_train=b[0], baseline_val=b[1], baseline_test=b[2])
            elif b is not None:
                kw.update(baseline_train=b[0], baseline_test=b[1])
            return p.evaluate(f[0], train.labels, f[-1], rows.labels, **kw)

        result = classify(feats, base, base_name)
        if frozen is not None:
            old = [_embed(frozen, s, **embed_kw) for s in sets]
            result.other_baselines["frozen encoder"] = classify(old, None, "").metrics
        return result, feats[-1], rows
    if protocol == "retrieval":
        base_name, base = modality.baseline(train, rows)  # texts of both, then positives
        a, b = _embed_pairs(encoder, rows, **embed_kw)
        p = get_protocol("retrieval")
        names = {"a_name": "text", "b_name": "positive", "split": split}
        result = p.evaluate(
            a, b, baseline_a=base[1], baseline_b=base[3], baseline_name=base_name, **names
        )
        if frozen is not None:
            fa, fb = _embed_pairs(frozen, rows, **embed_kw)
            result.other_baselines["frozen encoder"] = p.evaluate(fa, fb, **names).metrics
        return result, a, rows
    raise ValueError(
        f"the training pipeline evaluates with the classification or retrieval protocol; "
        f"{protocol!r} data is evaluated by its own benchmark or script "
        f"(contrastkit.evaluate.protocols.get_protocol({protocol!r}))."
    )


def evaluate_transformed(
    cfg: RunConfig,
    modality: Modality,
    encoder: torch.nn.Module,
    train: Any,
    val: Any,
    test: Any | None,
    **embed_kw: Any,
) -> ProtocolResult | None:
    """With ``cfg.eval.transformed_test`` and labelled test images: kNN accuracy on a fixed,
    seeded copy of the test images, each shifted, rotated and rescaled a little
    (:func:`~contrastkit.evaluate.robustness.random_affine`, seed
    ``TRANSFORM_SEEDS["test"]``, whatever the training seed), the neighbour bank being the
    clean training and validation rows and k chosen on the validation rows transformed the
    same way (seed ``TRANSFORM_SEEDS["val"]``); raw pixels measured the same way beside it,
    and chance. None when the option is off or there are no labelled test images."""
    if not cfg.eval.transformed_test:
        return None
    if modality.name != "image" or test is None or getattr(test, "labels", None) is None:
        note(
            "eval.transformed_test needs labelled test images; this run has none, so the "
            "transformed test is skipped."
        )
        return None
    from contrastkit.evaluate.robustness import (
        TRANSFORM_SEEDS,
        AffineShift,
        random_affine,
        transformed_knn,
    )

    shift = AffineShift()

    def moved(rows: Any, part: str) -> Any:
        images = random_affine(rows.images, seed=TRANSFORM_SEEDS[part], shift=shift)
        return dataclasses.replace(rows, images=images, name=f"{rows.name} (transformed)")

    sets = [train, val, moved(val, "val"), moved(test, "test")]
    base_name, base = modality.baseline(*sets)
    feats = [_embed(encoder, rows, **embed_kw) for rows in sets]
    return transformed_knn(
        feats[0],
        train.labels,
        feats[1],
        val.labels,
        feats[2],
        feats[3],
        test.labels,
        baseline=(base[0], base[1], base[2], base[3]),
        baseline_name=base_name,
        ks=tuple(cfg.eval.knn_select_k) or (cfg.train.knn_k,),
        temperature=cfg.train.knn_temperature,
        details={"transform": shift.words(), "transform_seeds": dict(TRANSFORM_SEEDS)},
    )


def _classifier_figures(recipe: Any, features: Tensor, rows: Any, result: ProtocolResult) -> Any:
    """A recipe with a trained linear head (supervised, fine-tuning): its accuracy and macro
    F1 on the evaluated rows, beside chance; returns the confusion matrix."""
    device = next(recipe.classifier.parameters()).device
    with torch.no_grad():
        pred = recipe.classifier(features.to(device)).argmax(1).cpu()
    rep = classification_report(pred, rows.labels, result.details.get("num_classes"))
    result.metrics["classifier_accuracy"] = rep["accuracy"]
    result.metrics["classifier_macro_f1"] = rep["macro_f1"]
    chance = result.other_baselines.get("chance") or result.baseline
    if "knn_accuracy" in chance:
        chance["classifier_accuracy"] = chance["knn_accuracy"]
    return rep["confusion_matrix"]


# ----------------------------------------------------------------------------- pipeline
#: files that make a folder hold a run: training into it again needs --resume or --overwrite
RUN_FILES = ("checkpoint.safetensors", "results.json", "encoder.safetensors")

#: the run's resolved config, written when training starts; --resume compares with it
RUN_JSON = "run.json"

#: options that may differ when a run is resumed (``node.*``: every option of the node): the
#: Trainer's :data:`~contrastkit.train.trainer.RESUME_MAY_CHANGE` (train.out_dir, progress,
#: device, tensorboard, max_minutes, and what only watches the run: the monitor, the collapse
#: and divergence tests) and the evaluation after training; any other difference between the
#: run's ``run.json`` and the resuming config is refused
RESUME_MAY_CHANGE = (
    *(f"train.{k}" for k in sorted(TRAIN_MAY_CHANGE)),  # out_dir, progress, device, ...
    "eval.*",
)

#: what --overwrite removes from the folder before the new run starts
_OVERWRITTEN = ("results.json", "report.html", "log.csv", RUN_JSON)


def check_out_dir(out_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Check the output folder before a run starts; with ``overwrite``, remove the old run's
    files. Raises :class:`~contrastkit.app.config.ConfigError` (one line naming the folder and
    the fix) when the folder cannot be written, when it holds a run and neither ``resume`` nor
    ``overwrite`` is given (no run is silently overwritten), or when ``resume`` finds no
    checkpoint to resume."""
    out = Path(out_dir)
    if resume and overwrite:
        raise ConfigError(
            "--resume and --overwrite contradict each other: --resume continues the run in "
            f"{out}, --overwrite replaces it; give one of them."
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; choose another --out.")
    if resume:
        if not (out / RUN_FILES[0]).is_file():
            raise ConfigError(
                f"nothing to resume in {out}: it holds no {RUN_FILES[0]}; drop --resume to "
                "start a fresh run there."
            )
    elif not overwrite:
        found = [name for name in RUN_FILES if (out / name).exists()]
        if found:
            raise ConfigError(
                f"{out} already holds a run ({', '.join(found)}); use --resume to continue "
                "it, --overwrite to replace it, or another --out."
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(
            f"cannot write to --out {out}: {reason.lower()}; choose a folder you can write to."
        ) from None
    if overwrite and dist.rank() == 0:
        for path in out.iterdir():
            name = path.name
            if path.is_file() and (
                name in _OVERWRITTEN or name.startswith(("checkpoint.", "encoder."))
            ):
                path.unlink()
    return out


def _may_change(key: str) -> bool:
    return any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in RESUME_MAY_CHANGE)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    return {f"{node}.{k}": v for node, values in config.items() for k, v in values.items()}


def _show(value: Any) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def config_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for each option of two nested configs (:meth:`RunConfig.to_dict`)
    that differs, except :data:`RESUME_MAY_CHANGE`. When the recipe differs, the options only
    one of the two recipes has are not listed (``recipe.name`` says it)."""
    old, cur = _flat(saved), _flat(new)
    other_recipe = old.get("recipe.name") != cur.get("recipe.name")
    missing = object()
    out = []
    for key in [*old, *(k for k in cur if k not in old)]:
        a, b = old.get(key, missing), cur.get(key, missing)
        if _may_change(key) or a == b:
            continue
        if missing in (a, b):
            if other_recipe and key.startswith("recipe."):
                continue
            a, b = ("(not set)" if v is missing else v for v in (a, b))
        out.append(f"{key}: {_show(a)} -> {_show(b)}")
    return out


def _start_run_json(cfg: RunConfig, resume: bool) -> None:
    """On resume, refuse a config that differs from the run's ``run.json`` (naming every
    option that differs); then write the run's resolved config as ``run.json``."""
    path = Path(cfg.train.out_dir) / RUN_JSON
    new = cfg.to_dict()
    if resume:
        if path.is_file():
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                raise ConfigError(
                    f"cannot resume: {path} does not read as JSON; --overwrite starts the run over."
                ) from None
            diff = config_differences(saved, new)
            if diff:
                raise ConfigError(
                    f"cannot resume the run in {cfg.train.out_dir} with other options: "
                    f"{', '.join(diff)}; use the run's options (see {path}), --overwrite to "
                    "start it over, or another --out."
                )
        else:
            note(
                f"{path} is missing (a run from an older version): the run's options are "
                "not checked beyond the checkpoint's training options."
            )
    if dist.rank() == 0:
        atomic_write_bytes(path, json.dumps(new, indent=2).encode())


def fit_batch_size(cfg: RunConfig, rows: int, rows_word: str = "rows") -> RunConfig:
    """``cfg`` with a batch that fits ``rows`` training rows, saying so when it changes.

    A batch larger than the training part (the default 256 on a 200-line text file) becomes
    the largest power of two ≤ rows / 2 (at least two steps an epoch; a multiple of the
    process count under torch.distributed). The same data always gives the same batch, so a
    resumed run matches its run.json.
    """
    if cfg.train.batch_size <= rows:
        return cfg
    world = dist.world_size()
    batch = 2
    while batch * 2 <= rows // 2:
        batch *= 2
    batch = max(batch - batch % world, world)
    if batch < 2 or batch > rows:
        raise ValueError(
            f"{rows} training {rows_word} are too few to train on (a batch needs at least 2, "
            f"and {world} processes need {2 * world}); add data or lower data.val_size."
        )
    if dist.rank() == 0:
        note(
            f"batch_size {cfg.train.batch_size} is larger than the {rows} training {rows_word}; "
            f"training with batch_size {batch} (set train.batch_size to choose another)."
        )
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=batch))


def run(cfg: RunConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train and evaluate one run; write ``run.json`` (the resolved config, when training
    starts), ``results.json`` (and the report) into ``cfg.train.out_dir``. Returns what
    results.json holds.

    The folder is checked first (:func:`check_out_dir`): a folder holding a run needs
    ``resume`` (continue it: the options must match its ``run.json``, but for
    :data:`RESUME_MAY_CHANGE`) or ``overwrite`` (replace it)."""
    modality = MODALITIES[cfg.modality]
    t_start = time.time()
    check_out_dir(cfg.train.out_dir, resume=resume, overwrite=overwrite)
    torch.manual_seed(cfg.train.seed)
    data = modality.load(cfg.data.name, cfg)
    if getattr(data, "val", None) is not None:  # the loader's own split (molecules: scaffolds)
        train, val = data.train, data.val
    elif not modality.holds_out_val:
        train, val = data.train, None
    else:
        train, val = split_validation(data.train, cfg.data.val_size, cfg.train.seed)
    cfg = fit_batch_size(cfg, len(train), modality.rows_word)
    cfg, recipe, encoder_name = modality.build(cfg, train, data)
    labels = getattr(train, "labels", None)
    classes = int(torch.unique(labels).numel()) if labels is not None else 0
    if recipe.needs_labels and classes == 1:
        raise ValueError(
            f"the {cfg.recipe.name} recipe contrasts classes, but every training row of "
            f"{data.name} has the same label, so it has no negatives and learns nothing; add "
            "rows of other classes, or train a self-supervised recipe (e.g. --recipe simclr)."
        )
    _start_run_json(cfg, resume)
    protocol = data.protocol if labels is not None or data.protocol in _UNLABELLED else None
    if protocol == "classification" and classes == 1:
        protocol = None  # one class: every classifier is right, and the figures mean nothing
    frozen = None
    if protocol and modality.frozen_baseline(cfg):  # the pre-trained start, as it is now
        import copy

        frozen = copy.deepcopy(recipe.encoder).eval()
        if modality.name == "image_text":  # both towers
            frozen = (frozen, copy.deepcopy(recipe.text_encoder).eval())
    # a kNN on one class means nothing; image–text runs are judged by retrieval, graph runs
    # by their own protocols
    monitor = (train, val) if classes > 1 and modality.name in ("image", "text") else None
    trainer = Trainer(recipe, train, cfg.train, monitor=monitor, encoder_name=encoder_name)
    history = trainer.fit(resume=resume)
    train_seconds = time.time() - t_start
    if not trainer.is_main:  # evaluation, report and results.json belong to process 0
        return {"train_seconds": train_seconds, "history": history, "rank": trainer.rank}
    test = data.test if getattr(data.test, "labels", None) is not None else None
    counts = {"train": len(train)}
    if val is not None:
        counts["val"] = len(val)
    if test is not None:
        counts["test"] = len(test)
    results: dict[str, Any] = {
        "config": cfg.to_dict(),
        "modality": modality.name,
        "data": {"name": data.name, **counts},
        "precision": trainer.precision,
        "train_seconds": train_seconds,
        # the epochs planned (fewer than train.epochs when fitted to the time budget)
        "epochs": trainer.epochs,
        "history": history,
        "evaluation": None,
        "summary": [],
    }
    if modality.name == "image_text":
        from contrastkit.recipes.clip import export_towers

        export_towers(recipe, cfg.train.out_dir, encoder_name)
    if modality.name == "image_text" and protocol is not None:
        _image_text_results(cfg, recipe, frozen, data, train, val, trainer, results)
    elif modality.results is not None and protocol is not None:
        modality.results(cfg, recipe, frozen, data, train, val, trainer, results)
    elif protocol is None:
        why = "one class only" if classes == 1 else "no labels or pairs to evaluate with"
        results["summary"] = [
            f"no evaluation: {data.name} has {why}; the encoder is in {cfg.train.out_dir}."
        ]
    else:
        kw = dict(device=trainer.device, bf16=trainer.precision == "bf16")
        result, features, rows = evaluate_run(
            cfg, modality, protocol, recipe.encoder, train, val, test, frozen=frozen, **kw
        )
        confusion = result.details.get("confusion_matrix")
        made_by = f"kNN with k={result.details.get('k')} (chosen on the validation split)"
        if hasattr(recipe, "classifier"):  # supervised / fine-tuned: the trained linear head
            confusion = _classifier_figures(recipe, features, rows, result)
            made_by = f"the {cfg.recipe.name} recipe's trained linear classifier"
        made_by += f", {result.split} split, {len(rows)} {modality.rows_word}"
        results["evaluation"] = result.to_dict()
        results["summary"] = result.format().splitlines()
        moved = evaluate_transformed(cfg, modality, recipe.encoder, train, val, test, **kw)
        if moved is not None:  # eval.transformed_test: beside the clean test figure
            results["evaluation"].update(
                {f"transformed_test.{k}": v for k, v in moved.to_dict().items()}
            )
            results["summary"][1:1] = [moved.summary_line()]
        if result.split == "val":  # say where the figures come from
            results["summary"].append(
                f"evaluated on the validation split ({len(val)} {modality.rows_word} held out of the "
                f"training data, seed {cfg.train.seed}): {data.name} has no labelled test split."
            )
        if getattr(data, "note", "") and result.split == "test":  # a test part we held out
            results["summary"].append(data.note)
        if cfg.eval.report:
            results["report"] = str(
                _report(
                    cfg,
                    modality,
                    data,
                    result,
                    history,
                    features,
                    rows,
                    (confusion, made_by),
                    trainer,
                    moved,
                )
            )
    results["total_seconds"] = time.time() - t_start
    out = Path(cfg.train.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=2).encode())
    return results


def _image_text_results(
    cfg: RunConfig,
    recipe: Any,
    frozen: Any,
    data: Any,
    train: Any,
    val: Any,
    trainer: Trainer,
    results: dict[str, Any],
) -> None:
    """Evaluate an image–text run (:func:`~contrastkit.app.image_text.evaluate_image_text`):
    retrieval on the test and validation pairs with their baselines, zero-shot classification
    where the test pairs have categories; fill ``results`` and write the report."""
    from contrastkit.app.image_text import evaluate_image_text, report_grids

    bf16 = trainer.precision == "bf16"
    test = data.test
    result, val_result, zero_shot, (image_emb, text_emb) = evaluate_image_text(
        recipe,
        frozen,
        train,
        val,
        test,
        templates=tuple(cfg.eval.zero_shot_templates) or None,
        bf16=bf16,
        seed=cfg.train.seed,
    )
    results["evaluation"] = result.to_dict()
    results["validation"] = val_result.to_dict()
    lines = result.format().splitlines()
    if zero_shot:
        results["zero_shot"] = zero_shot
        b = zero_shot.get("baseline", {})
        lines.append(
            f"zero-shot balanced accuracy, test ({len(zero_shot['classes'])} categories, "
            f"{len(zero_shot['templates'])} templates): {zero_shot['balanced_accuracy']:.3f} "
            f"(top-1 {zero_shot['top1']:.3f}; frozen towers + linear map "
            f"{b.get('balanced_accuracy', float('nan')):.3f}, chance "
            f"{zero_shot['chance_balanced_accuracy']:.3f})"
        )
    v = val_result.metrics
    lines.append(
        f"validation ({len(val)} pairs held out of {data.name}, where choices are made): "
        f"image→caption R@5 {v['a2b_recall@5']:.3f}, caption→image R@5 {v['b2a_recall@5']:.3f} "
        f"(frozen towers + linear map {val_result.baseline.get('a2b_recall@5', float('nan')):.3f}"
        f" / {val_result.baseline.get('b2a_recall@5', float('nan')):.3f})"
    )
    if data.note:
        lines.append(data.note)
    results["summary"] = lines
    if not cfg.eval.report:
        return
    from contrastkit.evaluate.report import write_report

    grids = report_grids(test, image_emb, text_emb, seed=cfg.train.seed)
    metrics: dict[str, Any] = metric_rows(lines)
    metrics.update(
        {
            "recipe": f"{cfg.recipe.name} ({cfg.recipe.loss})",
            "data": f"{data.name} (train {len(train)}, val {len(val)}, test {len(test)} pairs)",
            "towers": f"{cfg.model.encoder} + {cfg.model.text_encoder}",
            "epochs": trainer.epoch,
            "precision": trainer.precision,
        }
    )
    import numpy as np

    confusion = np.asarray(zero_shot["confusion_matrix"]) if zero_shot else None
    results["report"] = str(
        write_report(
            Path(cfg.train.out_dir) / "report.html",
            title=f"contrastkit {cfg.recipe.name} on {data.name}",
            metrics=metrics,
            history=results["history"],
            features=image_emb,
            labels=test.labels,
            classes=test.classes or None,
            confusion=confusion,
            confusion_title=(
                f"zero-shot classification (class names × {len(zero_shot['templates'])} "
                f"templates), test split, {len(test)} images"
                if zero_shot
                else None
            ),
            maps=cfg.eval.report_maps,
            seed=cfg.train.seed,
            retrieval_grids=grids,
        )
    )


def _graph_results(
    cfg: RunConfig,
    recipe: Any,
    frozen: Any,
    data: Any,
    train: Any,
    val: Any,
    trainer: Trainer,
    results: dict[str, Any],
) -> None:
    """Evaluate a graph or node run (:func:`~contrastkit.app.graph.evaluate_graph_run`):
    cross-validated SVM accuracy (TU graphs, nodes) or scaffold-split probe ROC-AUC
    (molecules), baselines beside it; fill ``results`` and write the report."""
    from contrastkit.app.graph import evaluate_graph_run
    from contrastkit.evaluate.report import write_report

    result, features, rows = evaluate_graph_run(
        recipe.encoder, frozen, data, train, val, seed=cfg.train.seed
    )
    results["evaluation"] = result.to_dict()
    lines = result.format().splitlines()
    if data.note:
        lines.append(data.note)
    results["summary"] = lines
    if not cfg.eval.report:
        return
    metrics: dict[str, Any] = metric_rows(lines)
    metrics.update(
        {
            "recipe": cfg.recipe.name,
            "data": f"{data.name} ({len(rows)} {'evaluated ' if result.split == 'test' else ''}"
            f"{'nodes' if hasattr(rows, 'graph') else 'graphs'})",
            "encoder": getattr(recipe.encoder, "config", cfg.model.encoder),
            "epochs": trainer.epoch,
            "precision": trainer.precision,
        }
    )
    labels = rows.labels
    if labels is not None and len(labels) != len(features):  # nodes: the labelled ones
        labels = labels[labels >= 0]
    results["report"] = str(
        write_report(
            Path(cfg.train.out_dir) / "report.html",
            title=f"contrastkit {cfg.recipe.name} on {data.name}",
            metrics=metrics,
            history=results["history"],
            features=features,
            labels=labels,
            classes=getattr(rows, "classes", None) or None,
            maps=cfg.eval.report_maps,
            seed=cfg.train.seed,
            **MODALITIES[cfg.modality].report_rows(rows),
        )
    )


def _report(
    cfg: RunConfig,
    modality: Modality,
    data: Any,
    result: ProtocolResult,
    history: list[dict[str, Any]],
    features: Tensor,
    rows: Any,
    confusion: tuple[Any, str],
    trainer: Trainer,
    moved: ProtocolResult | None = None,
) -> Path:
    """Write the run's report.html: the figures in words (the transformed test's, when
    measured, after the headline), what was trained, curves, maps, neighbours, confusion."""
    from contrastkit.evaluate.report import write_report

    # "kNN accuracy, test: 0.912 (raw pixels 0.880, chance 0.101)" → a row of the table
    lines = result.format().splitlines()
    if moved is not None:
        lines[1:1] = [moved.summary_line()]
    metrics: dict[str, Any] = metric_rows(lines)
    if moved is not None:
        seeds = moved.details.get("transform_seeds", {})
        metrics["test transform"] = (
            f"{moved.details.get('transform', '')} per image (seed {seeds.get('test')}); "
            f"k chosen on the validation split transformed the same way (seed {seeds.get('val')})"
        )
    metrics.update(
        {
            "recipe": cfg.recipe.name,
            "data": f"{data.name} ({result.split} {len(rows)})",
            "encoder": cfg.model.encoder,
            "epochs": trainer.epoch,
            "precision": trainer.precision,
        }
    )
    labels = getattr(rows, "labels", None)
    confusion, made_by = confusion  # the matrix and the classifier that made it, in words
    if confusion is not None:
        import numpy as np

        confusion = np.asarray(confusion)
    return write_report(
        Path(cfg.train.out_dir) / "report.html",
        title=f"contrastkit {cfg.recipe.name} on {data.name}",
        metrics=metrics,
        history=history,
        features=features,
        labels=labels,
        classes=getattr(rows, "classes", None),
        confusion=confusion if labels is not None else None,
        confusion_title=made_by,
        maps=cfg.eval.report_maps,
        seed=cfg.train.seed,
        **modality.report_rows(rows),
    )
