"""A run's configuration: one tree of dataclasses, the only place an option and its default live.

::

    RunConfig
    ├── data    DataConfig: name, val_size
    ├── model   ModelConfig: encoder, width, small_input, init_encoder, max_length
    ├── recipe  the chosen recipe's own config dataclass (``RECIPES[name][1]``) + ``name``
    ├── train   contrastkit.train.TrainConfig (the training loop's options)
    └── eval    EvalConfig: knn_select_k, linear_probe, report, report_maps

Every other way of setting an option is derived from these dataclasses: the ``contrastkit
train`` flags (:func:`cli_flags`), config-file keys (JSON, TOML or YAML; nested sections or
dotted keys) and ``--set key=value``. A key is dotted (``train.lr``, ``recipe.queue_size``);
a bare key (``queue_size``) works where it names exactly one option of the tree. Values are
parsed and checked against the field's type, and an unknown key is an error that lists the
valid keys, closest first.

The recipe node holds the chosen recipe's options, selected by ``recipe.name``: set
``recipe.name = "moco"`` and ``recipe.queue_size = 8192`` is a valid key. Its image geometry
(``image_size``, ``channels``) and a classifier's ``num_classes`` are None until the data fills
them in (:meth:`RunConfig.resolved`), unless set. ``train.optimizer``, ``train.lr`` and
``train.weight_decay`` left at None take the recipe's ``optim_defaults``.

Config files written for the old flat ``ExperimentConfig`` (``{"epochs": 3, "temperature":
0.2, "recipe_options": {...}}``) still load: :data:`FLAT_KEYS` maps each flat key to its place
in the tree, and a :class:`FlatConfigWarning` shows the file's nested form.

Example:
    >>> from contrastkit.app.config import RunConfig, load_run_config
    >>> cfg = load_run_config(flags={"recipe.name": "moco"}, sets=["train.lr=0.1", "queue_size=8192"])
    >>> cfg.recipe.name, cfg.recipe.queue_size, cfg.train.lr, cfg.train.epochs
    ('moco', 8192, 0.1, 10)
    >>> cfg.resolved(image_shape=(1, 28, 28)).recipe.image_size
    28
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import os
import re
import sys
import types
import typing
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrastkit.evaluate import DEFAULT_K_GRID
from contrastkit.recipes import RECIPES
from contrastkit.train import TrainConfig

__all__ = [
    "DEFAULT_RECIPE",
    "FLAG_ALIASES",
    "FLAT_KEYS",
    "NODES",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "FlatConfigWarning",
    "ModelConfig",
    "Option",
    "RunConfig",
    "cli_flags",
    "load_run_config",
    "options",
    "recipe_node",
    "recipe_node_class",
    "recipe_options",
    "value_text",
]

#: the recipe of a run that names none
DEFAULT_RECIPE = "simclr"


class ConfigError(ValueError):
    """A config key or value is not valid (the message names the key and the fix)."""


class FlatConfigWarning(FutureWarning):
    """A config file or mapping uses the old flat form (its nested form is in the message)."""


@dataclass
class DataConfig:
    """The data.

    Attributes:
        name: a built-in data set (``digits``, ``mnist``, ``fashion-mnist``; for text recipes
            ``movie-snippets``), an image folder (root/<class>/*.png: 20% held out as the
            test split, stratified, seed 0; root/train/<class>/ + root/test/<class>/: your
            own test split; root/*.png: unlabelled), an IDX folder, or a text file (.txt one
            text per line; .csv/.tsv/.jsonl with ``text`` and optional ``label`` /
            ``positive`` / ``negative`` columns).
        val_size: rows held out of the training split for validation (the kNN monitor, the
            choice of k, text evaluation); a fraction if < 1.
        smiles_column: graph recipes on a CSV/TSV of molecules: the SMILES column.
        label_column: graph recipes on a CSV/TSV of molecules: the label column ("" guesses
            it when one other column can be it).
        split: "" takes the data's usual split. Graph recipes on molecules: ``scaffold``
            (Bemis–Murcko scaffolds, 80/10/10, as MoleculeNet; the default) or ``random``
            (80/10/10, seeded by ``train.seed``). Recommenders: ``random`` (each user's
            interactions 80/10/10; the default) or ``leave_last_out`` (each user's latest
            interaction is the test, the one before it the validation).
        target: tabular recipes (``scarf``): the column to predict (the evaluation's labels;
            training never sees it).
        numeric_columns, categorical_columns: tabular recipes: columns to read as numbers or
            as categories, overriding the inference; drop_columns: columns to leave out.
        scaling: tabular recipes: ``quantile`` (to a normal, fitted on the training rows) or
            ``standard``.
        user_column, item_column, rating_column, timestamp_column: recommenders on an
            interaction CSV/TSV or RecBole ``.inter`` file ("" takes ``user_id``/``user``,
            ``item_id``/``item``, ``rating``, ``timestamp`` when present).
        min_rating: recommenders: interactions rated below this are left out (0: every
            interaction counts, implicit feedback).

    Graph recipes (``graphcl``, ``infograph``, ``grace``) take ``mutag``, ``b3db``,
    ``karate``, a TU-format folder, a CSV/TSV of SMILES, or an edge list (``edges.txt``, or a
    folder holding it with ``features.txt`` and ``labels.txt``). Tabular recipes take a
    CSV/TSV/parquet table or a built-in one (``mlc_churn``, ``wa_churn``, ``biopsy``,
    ``breast_cancer``, ``wine``, ``digits``). Recommenders (``two_tower``, ``bpr_mf``,
    ``lightgcn``, ``sgl``, ``simgcl``, ``xsimgcl``) take ``ml-100k`` or an interaction file.
    Audio recipes (``cola``, ``byol_a``, ``clap``) take ``fsdd``, ``spoken_words``,
    ``klettres``, a folder of audio files (root/<class>/*.wav|flac|ogg) or a CSV of clips and
    captions.
    """

    name: str = "digits"
    val_size: float = 0.1
    smiles_column: str = "smiles"
    label_column: str = ""
    split: str = ""
    target: str = ""
    numeric_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()
    scaling: str = "quantile"
    user_column: str = ""
    item_column: str = ""
    rating_column: str = ""
    timestamp_column: str = ""
    min_rating: float = 0.0

    def __post_init__(self) -> None:
        if not (
            0 < self.val_size < 1 or (self.val_size >= 1 and float(self.val_size).is_integer())
        ):
            raise ConfigError(
                f"data.val_size must be a fraction in (0, 1) or a whole number of rows ≥ 1, "
                f"got {self.val_size!r}; e.g. --val-size 0.1."
            )
        if self.split not in ("", "scaffold", "random", "leave_last_out"):
            raise ConfigError(
                f"data.split must be scaffold or random (molecules), random or leave_last_out "
                f"(interactions), or empty for the data's usual one; got {self.split!r}; e.g. "
                "--split random."
            )
        if self.scaling not in ("quantile", "standard"):
            raise ConfigError(
                f"data.scaling must be quantile or standard, got {self.scaling!r}; e.g. "
                "--scaling standard."
            )


@dataclass
class ModelConfig:
    """The encoder.

    Attributes:
        encoder: ``resnet18``/``34``/``50``, ``small_cnn`` or ``mlp``; for text recipes
            ``minilm``, ``small_text`` (a small Transformer), ``small_bag`` (SIF-weighted bag
            of word embeddings, for documents), or a local Hugging Face / exported encoder
            folder; for graph recipes ``gin`` (graphcl, infograph) or ``gcn`` (grace), which
            they use when this is left at resnet18; for audio recipes ``audio_cnn`` (BYOL-A's
            CNN, used when this is left at resnet18) or ``audio_transformer``.
        width: channel multiplier (ResNet) or width (SmallCNN: width × 128 channels); text
            encoders from scratch: the model dimension when > 1.
        small_input: the ResNet stem for small images (None: images of ≤ 64 px).
        init_encoder: start from this exported encoder folder (fine-tuning) instead of a new
            encoder.
        max_length: text encoders: tokens per text.
        text_encoder: image–text recipes (``clip``) and audio–text (``clap``): the text
            tower, ``char`` (audio–text only: characters, so unseen words embed), ``minilm``,
            ``small_text``, or a local Hugging Face / exported encoder folder (``encoder`` is
            the image tower: ``efficientnet_lite0`` with ImageNet weights, ``resnet18``,
            ``small_cnn``).
        text_width: image–text recipes: the model dimension of a ``small_text`` tower.
        layers: graph encoders (``gin``, ``gcn``): message-passing layers (0: the encoder's
            default, 5 for GIN as in GraphCL, 2 for GCN as in GRACE); their hidden width is
            ``width`` when > 1 (else GIN 32, GCN 128).
    """

    encoder: str = "resnet18"
    width: float = 0.25
    small_input: bool | None = None
    init_encoder: str | None = None
    max_length: int = 128
    text_encoder: str = "minilm"
    text_width: float = 256
    layers: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.width <= 65536:
            raise ConfigError(
                f"model.width must be a positive number (a channel multiplier such as 0.25, or "
                f"a text model's dimension such as 256), got {self.width!r}."
            )
        if not 0 <= self.layers <= 1000:
            raise ConfigError(
                f"model.layers must be a number of layers in 0..1000 (0: the encoder's "
                f"default), got {self.layers!r}; e.g. --layers 5."
            )
        if not 1 <= self.max_length <= 1_000_000:
            raise ConfigError(
                f"model.max_length must be a number of tokens in 1..1000000, got "
                f"{self.max_length!r}; e.g. --max-length 128."
            )


@dataclass
class EvalConfig:
    """The evaluation after training (the test split is used only here).

    Attributes:
        knn_select_k: the test kNN uses the k of this grid that is best on the validation
            split (empty: the monitor's ``train.knn_k``).
        linear_probe: fit a linear probe on the frozen features.
        report: write report.html (t-SNE/UMAP maps, neighbours, confusion matrix).
        report_maps: the 2-D maps of the report (``tsne``, ``umap``).
        transformed_test: images with a labelled test split: also classify a fixed, seeded
            copy of the test images, each shifted, rotated and rescaled a little
            (:func:`contrastkit.evaluate.robustness.random_affine`), with a kNN on the clean
            training embeddings (k chosen on the validation split transformed the same way),
            raw pixels and chance beside it: what crop-invariant embeddings buy.
        zero_shot_templates: image–text runs: the prompt templates (each with one ``{}``) of
            the zero-shot classification of the test categories (empty: the default
            ensemble, :data:`contrastkit.evaluate.zero_shot.DEFAULT_TEMPLATES`).
        label_fractions: tabular runs: the fractions of the training labels the probe, the
            fine-tune and the baselines are measured at.
        finetune_steps: tabular runs: the cap on the steps of the fine-tune and of the same
            network trained from scratch (both stop early on validation accuracy).
    """

    knn_select_k: tuple[int, ...] = DEFAULT_K_GRID
    linear_probe: bool = True
    report: bool = True
    report_maps: tuple[str, ...] = ("tsne", "umap")
    transformed_test: bool = False
    zero_shot_templates: tuple[str, ...] = ()
    label_fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    finetune_steps: int = 2000

    def __post_init__(self) -> None:
        if not self.label_fractions or not all(0 < f <= 1 for f in self.label_fractions):
            raise ConfigError(
                f"eval.label_fractions must hold fractions in (0, 1], got "
                f"{self.label_fractions!r}; e.g. --label-fractions 0.01,0.1,1."
            )
        if self.finetune_steps < 1:
            raise ConfigError(
                f"eval.finetune_steps must be ≥ 1, got {self.finetune_steps!r}; e.g. "
                "--finetune-steps 2000."
            )
        bad = [k for k in self.knn_select_k if not isinstance(k, int) or k < 1]
        if bad:
            raise ConfigError(
                f"eval.knn_select_k must hold neighbour counts ≥ 1, got {bad[0]!r}; e.g. "
                f"--knn-select-k 1,5,10,20 (or '' for the monitor's train.knn_k)."
            )
        bad_t = [t for t in self.zero_shot_templates if str(t).count("{}") != 1]
        if bad_t:
            raise ConfigError(
                f"eval.zero_shot_templates need exactly one {{}} for the class name each, got "
                f"{bad_t[0]!r}; e.g. --set eval.zero_shot_templates='a picture of a {{}}.'"
            )
        unknown = [m for m in self.report_maps if m not in ("tsne", "umap")]
        if unknown:
            raise ConfigError(
                f"eval.report_maps takes tsne and umap, got {unknown[0]!r}; e.g. "
                f"--report-maps tsne (or '' for no maps)."
            )


# ---------------------------------------------------------------------------------------------
# the recipe node: the chosen recipe's config dataclass, with its name and data-filled fields

#: recipe fields the data fills in when they are left unset (None)
DATA_FILLED = ("image_size", "channels", "num_classes")

_NODE_CLASSES: dict[str, type] = {}


def recipe_node_class(name: str) -> type:
    """The recipe node's dataclass for recipe ``name``: a subclass of its config dataclass
    (``RECIPES[name][1]``) with a ``name`` field and :data:`DATA_FILLED` fields that default
    to None (filled from the data by :meth:`RunConfig.resolved`)."""
    if name not in RECIPES:
        raise ConfigError(_unknown_value("recipe.name", name, list(RECIPES)))
    if name not in _NODE_CLASSES:
        base = RECIPES[name][1]
        own = {f.name for f in dataclasses.fields(base)}
        extra: list[tuple[str, Any, Any]] = [
            (f, int | None, field(default=None)) for f in DATA_FILLED if f in own
        ]
        extra.append(("name", str, field(default=name, init=False)))
        cls = dataclasses.make_dataclass(
            f"{base.__name__}Node",
            extra,
            bases=(base,),
            namespace={
                "__doc__": f"{base.__doc__}\n\n(The run's recipe node: ``name`` = {name!r}.)"
            },
        )
        cls.__module__ = __name__
        _NODE_CLASSES[name] = cls
    return _NODE_CLASSES[name]


def __getattr__(attr: str) -> type:  # the node classes by name, for pickle
    for name, (_, config_cls) in RECIPES.items():
        if attr == f"{config_cls.__name__}Node":
            return recipe_node_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def recipe_node(name: str = DEFAULT_RECIPE, **values: Any) -> Any:
    """The recipe node of recipe ``name`` with ``values`` (checked like config-file values),
    e.g. ``recipe_node("moco", queue_size=8192)``."""
    cls = recipe_node_class(name)
    spec = options(name)
    return cls(**{k: _parse(spec[_checked_key(f"recipe.{k}", spec)], v) for k, v in values.items()})


def _is_node(value: Any) -> bool:
    return type(value) in _NODE_CLASSES.values()


def _as_node(value: Any) -> Any:
    """A recipe name, a recipe node, or an instance of a recipe's own config dataclass (whose
    :data:`DATA_FILLED` fields at the class default count as unset) → a recipe node."""
    if isinstance(value, str):
        return recipe_node(value)
    if _is_node(value):
        return value
    for name, (_, config_cls) in RECIPES.items():
        if type(value) is config_cls:
            values = {f.name: getattr(value, f.name) for f in dataclasses.fields(config_cls)}
            for f in dataclasses.fields(config_cls):
                if f.name in DATA_FILLED and values[f.name] == f.default:
                    values[f.name] = None
            return recipe_node_class(name)(**values)
    raise ConfigError(
        f"recipe must be a recipe name ({', '.join(RECIPES)}) or a recipe's config dataclass, "
        f"got {type(value).__name__}."
    )


# ---------------------------------------------------------------------------------------------
# the tree's options


@dataclass
class RunConfig:
    """Everything one ``contrastkit train`` run needs, as one tree of dataclasses.

    Attributes:
        data: :class:`DataConfig`.
        model: :class:`ModelConfig`.
        recipe: the chosen recipe's node (:func:`recipe_node`; a recipe name or the recipe's
            own config dataclass is converted).
        train: :class:`~contrastkit.train.TrainConfig`.
        eval: :class:`EvalConfig`.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    recipe: Any = field(default_factory=lambda: recipe_node(DEFAULT_RECIPE))
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        self.recipe = _as_node(self.recipe)
        for node, cls in NODES.items():
            value = getattr(self, node)
            if cls is not None and not isinstance(value, cls):
                raise ConfigError(f"{node} must be a {cls.__name__}, got {type(value).__name__}.")
        device = self.train.device
        if device != "auto":
            import torch

            try:
                torch.device(device)
            except (RuntimeError, TypeError, ValueError):
                raise ConfigError(
                    f"train.device must be auto or a torch device such as cpu, cuda or cuda:1, "
                    f"got {device!r}."
                ) from None

    # -- reading -------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "the mapping") -> RunConfig:
        """Build from a mapping: nested sections (``{"train": {"lr": 0.1}}``), dotted keys
        (``{"train.lr": 0.1}``) or the old flat form (``{"lr": 0.1}``, with a
        :class:`FlatConfigWarning`)."""
        return load_run_config(values=values, source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> RunConfig:
        """Read a JSON, TOML or YAML file (nested, dotted or old flat keys)."""
        return load_run_config(file=path)

    def updated(self, values: Mapping[str, Any]) -> RunConfig:
        """A copy with ``values`` (dotted or bare keys) set, checked like ``--set``."""
        base = self.to_flat()
        if _recipe_name([("--set", dict(values))]) != self.recipe.name and any(
            k.replace("-", "_") in ("recipe", "recipe.name") for k in values
        ):  # another recipe: this one's options do not apply
            base = {k: v for k, v in base.items() if not k.startswith("recipe.")}
        return _assemble([("", base), ("--set", dict(values))], {})

    # -- writing -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The nested form (JSON-ready: tuples become lists), ``recipe.name`` first."""
        out: dict[str, dict[str, Any]] = {}
        for node in NODES:
            values = _node_values(getattr(self, node))
            if node == "recipe":
                values = {"name": values.pop("name"), **values}
            out[node] = json.loads(json.dumps(values))
        return out

    def to_flat(self) -> dict[str, Any]:
        """``{dotted key: value}`` of every option."""
        return {
            f"{node}.{k}": v for node in NODES for k, v in _node_values(getattr(self, node)).items()
        }

    # -- resolving -----------------------------------------------------------------------------

    @property
    def recipe_class(self) -> type:
        """The chosen recipe's class (``RECIPES[recipe.name][0]``)."""
        return RECIPES[self.recipe.name][0]

    @property
    def modality(self) -> str:
        """What the recipe trains on: ``"image"``, ``"text"`` or ``"image_text"``."""
        return getattr(self.recipe_class, "modality", "image")

    def resolved(
        self, image_shape: tuple[int, int, int] | None = None, num_classes: int | None = None
    ) -> RunConfig:
        """A copy with what was left to others filled in: ``train.optimizer``, ``train.lr`` and
        ``train.weight_decay`` at None from the recipe's ``optim_defaults``; the recipe's
        ``image_size`` and ``channels`` at None from ``image_shape`` (C, H, W) and
        ``num_classes`` from ``num_classes``."""
        defaults = self.recipe_class.optim_defaults
        fill = {k: v for k, v in defaults.items() if getattr(self.train, k, 0) is None}
        data = {}
        if image_shape is not None:
            data.update(channels=image_shape[0], image_size=image_shape[1])
        if num_classes:
            data["num_classes"] = num_classes
        known = {f.name for f in dataclasses.fields(self.recipe)}
        data = {k: v for k, v in data.items() if k in known and getattr(self.recipe, k) is None}
        return dataclasses.replace(
            self,
            recipe=dataclasses.replace(self.recipe, **data),
            train=dataclasses.replace(self.train, **fill),
        )

    def recipe_config(self) -> Any:
        """The recipe's own config dataclass (``RECIPES[name][1]``) with this node's values;
        :data:`DATA_FILLED` fields still unset keep that dataclass's defaults."""
        config_cls = RECIPES[self.recipe.name][1]
        values = {
            f.name: getattr(self.recipe, f.name)
            for f in dataclasses.fields(config_cls)
            if not (f.name in DATA_FILLED and getattr(self.recipe, f.name) is None)
        }
        return config_cls(**values)


#: the tree's nodes and their dataclasses (the recipe's depends on ``recipe.name``)
NODES: dict[str, type | None] = {
    "data": DataConfig,
    "model": ModelConfig,
    "recipe": None,
    "train": TrainConfig,
    "eval": EvalConfig,
}


def _node_values(node: Any) -> dict[str, Any]:
    return {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}


@dataclass(frozen=True)
class Option:
    """One option of the tree: its dotted ``key``, type, default and help text."""

    key: str
    type: Any
    default: Any
    help: str

    @property
    def node(self) -> str:
        return self.key.partition(".")[0]

    @property
    def name(self) -> str:
        return self.key.partition(".")[2]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


_OPTIONS: dict[str, dict[str, Option]] = {}


def options(recipe: str = DEFAULT_RECIPE) -> dict[str, Option]:
    """Every option of the tree when the recipe is ``recipe``: ``{dotted key: Option}``, in
    the order data, model, recipe (``recipe.name`` first), train, eval."""
    if recipe not in _OPTIONS:
        out: dict[str, Option] = {}
        for node, cls in NODES.items():
            cls = cls or recipe_node_class(recipe)
            hints = _type_hints(cls)
            docs = attribute_docs(cls)
            fields = dataclasses.fields(cls)
            if node == "recipe":  # name first
                fields = sorted(fields, key=lambda f: f.name != "name")
            for f in fields:
                default = _default(f)
                help_text = docs.get(f.name, "")
                if node == "recipe" and f.name == "name":
                    help_text = "the recipe: " + _recipe_names()
                elif node == "recipe" and f.name in DATA_FILLED:
                    help_text = f"{help_text} (default: from the data)".strip()
                out[f"{node}.{f.name}"] = Option(
                    f"{node}.{f.name}", hints[f.name], default, help_text
                )
        _OPTIONS[recipe] = out
    return _OPTIONS[recipe]


def _type_hints(cls: type) -> dict[str, Any]:
    """The fields' types; one that cannot be evaluated (a name imported only for type
    checkers) is ``Any``: its values are then taken as they come."""
    try:
        return typing.get_type_hints(cls)
    except NameError:
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            space = vars(sys.modules[klass.__module__])
            for name, tp in inspect.get_annotations(klass).items():
                try:
                    out[name] = eval(tp, space) if isinstance(tp, str) else tp
                except Exception:
                    out[name] = Any
        return out


def _recipe_names() -> str:
    by: dict[str, list[str]] = {}
    for n, (c, _) in RECIPES.items():
        by.setdefault(getattr(c, "modality", "image"), []).append(n)
    parts = [", ".join(by.pop("image", []))]
    parts += [f"{m.replace('_', '–')}: {', '.join(names)}" for m, names in by.items()]
    return "; ".join(parts) + "."


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: text}`` from the ``Attributes:`` sections of ``cls``'s docstrings (and its
    bases'), with reST markup removed. An entry may name several fields (``a, b: text``) and
    a field that has no entry of its own gets the text of the first entry that mentions it."""
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__dict__.get("__doc__") or ""
        lines = doc.expandtabs().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != "Attributes:":
                continue
            indent = None
            key: list[str] = []
            for raw in lines[i + 1 :]:
                if not raw.strip():
                    continue
                depth = len(raw) - len(raw.lstrip())
                if indent is None:
                    indent = depth
                if depth < indent:
                    break
                m = re.match(r"^([\w, ]+?):\s+(.*)$", raw.strip()) if depth == indent else None
                if m and all(n.strip() in names for n in m.group(1).split(",")):
                    key = [n.strip() for n in m.group(1).split(",")]
                    for n in key:
                        out[n] = m.group(2)
                elif key:
                    for n in key:
                        out[n] += " " + raw.strip()
    for key, text in list(out.items()):  # "a: text. b: more text." → a and b apart
        parts = re.split(r"(?<=\.)\s+([\w, ]+?):\s+", text)
        out[key] = parts[0]
        for i in range(1, len(parts) - 1, 2):
            found = [n.strip() for n in parts[i].split(",")]
            if all(n in names for n in found):
                out.update({n: parts[i + 1] for n in found if n not in (key,)})
            else:
                out[key] += f" {parts[i]}: {parts[i + 1]}"
    out = {k: _plain(v) for k, v in out.items()}
    for name in names - set(out):
        for text in list(out.values()):
            if re.search(rf"\b{re.escape(name)}\b", text):
                out[name] = text
                break
    return out


def _plain(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]*)`", lambda m: m.group(1).rpartition(".")[2], text)
    return re.sub(r"``([^`]*)``", r"\1", text).strip()


# ---------------------------------------------------------------------------------------------
# keys

#: the old flat ``ExperimentConfig`` keys that are not a ``TrainConfig`` field → their place in
#: the tree (every ``TrainConfig`` field ``f`` is ``train.f``). ``crop_min_scale`` becomes
#: ``recipe.crop_scale = (value, 1.0)`` (``supervised``: ``(max(value, 0.5), 1.0)``), each
#: entry of ``recipe_options`` a ``recipe.`` key; None for ``temperature``, ``proj_hidden`` or
#: ``proj_dim`` is left unset, and ``flip`` / ``crop_min_scale`` are dropped for a recipe
#: without views (text), as before.
FLAT_KEYS: dict[str, str] = {
    "recipe": "recipe.name",
    "data": "data.name",
    "val_size": "data.val_size",
    "encoder": "model.encoder",
    "width": "model.width",
    "small_input": "model.small_input",
    "init_encoder": "model.init_encoder",
    "max_length": "model.max_length",
    "temperature": "recipe.temperature",
    "proj_hidden": "recipe.proj_hidden",
    "proj_dim": "recipe.proj_dim",
    "flip": "recipe.flip",
    "crop_min_scale": "recipe.crop_scale",
    "recipe_options": "recipe",
    "knn_select_k": "eval.knn_select_k",
    "linear_probe": "eval.linear_probe",
    "report": "eval.report",
    "report_maps": "eval.report_maps",
}


def _flat_keys() -> dict[str, str]:
    return {**{f.name: f"train.{f.name}" for f in dataclasses.fields(TrainConfig)}, **FLAT_KEYS}


def _migrate_flat(values: Mapping[str, Any], recipe: str) -> dict[str, Any]:
    """Old flat keys → dotted keys (see :data:`FLAT_KEYS`)."""
    table = _flat_keys()
    own = {f.name for f in dataclasses.fields(RECIPES[recipe][1])} if recipe in RECIPES else set()
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in table:
            raise ConfigError(_unknown_key(key, list(options(recipe)), flat=list(table)))
        target = table[key]
        if key == "recipe_options":
            if not isinstance(value, Mapping):
                raise ConfigError(f"recipe_options must be a mapping, got {value!r}.")
            out.update({f"recipe.{k}": v for k, v in value.items()})
        elif key in ("temperature", "proj_hidden", "proj_dim") and value is None:
            continue  # unset: the recipe's default
        elif key in ("flip", "crop_min_scale") and target.partition(".")[2] not in own:
            continue  # ignored by recipes without image views
        elif key == "crop_min_scale":
            low = max(float(value), 0.5) if recipe == "supervised" else value
            out[target] = (low, 1.0)
        else:
            out[target] = value
    return out


def _closest(query: str, keys: list[str]) -> list[str]:
    """``keys`` ordered by similarity to ``query`` (whole key or its last part)."""
    q, q_leaf = query.lower(), query.lower().rpartition(".")[2]

    def score(key: str) -> float:
        leaf = key.rpartition(".")[2]
        return max(
            difflib.SequenceMatcher(None, q, key).ratio(),
            difflib.SequenceMatcher(None, q_leaf, leaf).ratio(),
        )

    return sorted(keys, key=lambda k: -score(k))


def _unknown_key(key: str, valid: list[str], flat: list[str] = ()) -> str:
    ordered = _closest(key, valid)
    leaf = key.rpartition(".")[2]
    near = difflib.get_close_matches(key, valid, n=1) or [
        k for k in ordered[:1] if difflib.get_close_matches(leaf, [k.rpartition(".")[2]], n=1)
    ]
    if not near and flat:
        close = difflib.get_close_matches(key, list(flat), n=1)
        near = [_flat_keys()[close[0]]] if close and _flat_keys()[close[0]] in valid else []
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown key {key!r}{hint}; valid keys: {', '.join(ordered)}"


def _unknown_value(key: str, value: Any, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {key} {value!r}; valid: {', '.join(choices)}.{hint}"


def _checked_key(key: str, spec: Mapping[str, Option]) -> str:
    if key not in spec:
        raise ConfigError(_unknown_key(key, list(spec)))
    return key


def resolve_key(key: str, recipe: str = DEFAULT_RECIPE) -> str:
    """A dotted key, or a bare key naming exactly one option of the tree (``queue_size`` →
    ``recipe.queue_size``; ``recipe`` / ``data`` → ``recipe.name`` / ``data.name``), as the
    dotted key; an unknown or ambiguous key raises :class:`ConfigError` with the candidates."""
    spec = options(recipe)
    key = key.strip().replace("-", "_")
    if "." in key:
        return _checked_key(key, spec)
    if key in ("recipe", "data"):
        return f"{key}.name"
    found = [k for k in spec if k.rpartition(".")[2] == key]
    if len(found) == 1:
        return found[0]
    if found:
        raise ConfigError(
            f"key {key!r} is ambiguous: it may be {' or '.join(found)}; use one of these."
        )
    raise ConfigError(_unknown_key(key, list(spec)))


# ---------------------------------------------------------------------------------------------
# values


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names + (["none"] if type(None) in args else []))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return f"a list of {len(args)} ({', '.join(_type_name(a) for a in args)})"
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _convert(tp: Any, value: Any) -> Any:
    """``value`` (a string from the command line, or a file's value) as type ``tp``;
    ValueError when it is not one."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: a is str):
            try:
                return _convert(arg, value)
            except (ValueError, TypeError):
                pass
        raise ValueError
    if origin is tuple:
        if isinstance(value, str):
            text = value.strip()
            if text[:1] in "[(":
                value = json.loads("[" + text[1:-1] + "]")
            else:
                value = [v.strip() for v in text.split(",")] if text else []
        if not isinstance(value, (list, tuple)):
            raise ValueError
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if len(value) != len(args):
            raise ValueError
        return tuple(_convert(a, v) for a, v in zip(args, value))
    if origin is dict or tp is dict:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, Mapping):
            raise ValueError
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError
    if tp is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str):
            value = int(value.strip())
        if not isinstance(value, int) or abs(value) >= 2**63:  # beyond what torch can hold
            raise ValueError
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        number = float(value.strip() if isinstance(value, str) else value)
        if not abs(number) <= _FLOAT_MAX:  # nan, inf and beyond float32: no option means them
            raise ValueError
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError
    return value


#: the largest magnitude a float option takes (float32's: the tensors it ends up in)
_FLOAT_MAX = 3.4e38


def _parse(option: Option, value: Any) -> Any:
    try:
        return _convert(option.type, value)
    except (ValueError, TypeError, json.JSONDecodeError):
        rule = ""
        try:
            number = float(value)
            if not isinstance(value, bool) and not abs(number) <= _FLOAT_MAX:
                rule = f" (finite, of magnitude at most {_FLOAT_MAX:g})"
        except (ValueError, TypeError, OverflowError):
            pass
        raise ConfigError(
            f"{option.key} expects {_type_name(option.type)}{rule}, got {value!r}."
        ) from None


def _parse_sets(pairs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes KEY=VALUE (e.g. train.lr=0.1), got {pair!r}.")
        out[key.strip()] = text
    return out


# ---------------------------------------------------------------------------------------------
# files


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a .json, .toml, .yaml or .yml file."""
    p = Path(path)
    if p.suffix not in (".json", ".toml", ".yaml", ".yml"):
        raise ConfigError(f"config file {p} must end in .json, .toml, .yaml or .yml.")
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ConfigError(f"config file {p} {what}; check the --config path.")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "it is not UTF-8 text"
        raise ConfigError(f"cannot read config file {p}: {reason}.") from None
    kind = {".json": "JSON", ".toml": "TOML"}.get(p.suffix, "YAML")
    try:
        if p.suffix == ".json":
            values = json.loads(text)
        elif p.suffix == ".toml":
            import tomllib

            values = tomllib.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as err:  # the parsers' own error types differ
        raise ConfigError(
            f"config file {p} is not valid {kind}: {_parse_error(err)}; fix it "
            "(`contrastkit train --print-config` prints a valid config)."
        ) from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {p} must hold a mapping of options.")
    return values


def _parse_error(err: Exception) -> str:
    """A parser's error in one line, with its line and column (YAML's own message spans
    several lines and quotes the source)."""
    mark = getattr(err, "problem_mark", None)
    if mark is not None:
        problem = getattr(err, "problem", None) or getattr(err, "context", None) or "bad syntax"
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(err).split()) or type(err).__name__


def _split_form(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A file's mapping → (dotted keys from nested sections and dotted keys, old flat keys)."""
    dotted: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in NODES and isinstance(value, Mapping):
            dotted.update({f"{key}.{k}": v for k, v in value.items()})
        elif "." in key:
            dotted[key] = value
        elif isinstance(value, Mapping) and key not in _flat_keys():
            close = difflib.get_close_matches(key, list(NODES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown section {key!r}{hint}; sections: {', '.join(NODES)}.")
        else:
            flat[key] = value
    return dotted, flat


def _nested(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Dotted keys → sections in the tree's order (data, model, recipe, train, eval), a
    section's ``name`` first."""
    out: dict[str, dict[str, Any]] = {}
    order = list(NODES)
    for key in sorted(flat, key=lambda k: (order.index(k.partition(".")[0]), ".name" not in k)):
        node, _, name = key.partition(".")
        value = flat[key]
        out.setdefault(node, {})[name] = list(value) if isinstance(value, tuple) else value
    return out


def format_nested(values: Mapping[str, Any], suffix: str = ".json") -> str:
    """Dotted ``values`` as the text of a nested config file (JSON, TOML or YAML)."""
    nested = _nested(values)
    if suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_dump(nested, sort_keys=False).strip()
    if suffix == ".toml":
        lines = []
        for node, entries in nested.items():
            lines.append(f"[{node}]")
            for k, v in entries.items():
                lines.append(f"{k} = {_toml(v)}" if v is not None else f"# {k}: none (leave unset)")
        return "\n".join(lines)
    return json.dumps(nested, indent=2)


def _toml(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


# ---------------------------------------------------------------------------------------------
# assembling a RunConfig from layers


def load_run_config(
    file: str | os.PathLike | None = None,
    flags: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    *,
    values: Mapping[str, Any] | None = None,
    source: str = "the mapping",
) -> RunConfig:
    """Defaults < ``file`` (or ``values``) < ``flags`` (dotted keys → values given on the
    command line) < ``sets`` (``"KEY=VALUE"`` strings, dotted or bare keys).

    A file (or ``values``) may be nested (``{"train": {"lr": 0.1}}``), use dotted keys, or the
    old flat form (``{"lr": 0.1}``), which warns once with its nested form
    (:class:`FlatConfigWarning`). Raises :class:`ConfigError` (a ValueError) naming the key.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    flat: dict[str, tuple[str, dict[str, Any]]] = {}
    if file is not None:
        values, source = read_config_file(file), str(file)
    if values is not None:
        dotted, old = _split_form(values)
        layers.append((source, dotted))
        if old:
            flat[source] = (Path(source).suffix if file is not None else ".json", old)
            layers.append((source, {"__flat__": old}))
    layers.append(("flags", dict(flags or {})))
    layers.append(("--set", _parse_sets(sets)))
    return _assemble(layers, flat)


def _recipe_name(layers: list[tuple[str, dict[str, Any]]]) -> str:
    name: Any = DEFAULT_RECIPE
    for _, layer in layers:
        for key, value in layer.items():
            if key == "__flat__":
                value = value.get("recipe", name)
                key = "recipe.name"
            if key.strip().replace("-", "_") in ("recipe.name", "recipe"):
                name = value
    if not isinstance(name, str) or name not in RECIPES:
        raise ConfigError(_unknown_value("recipe.name", name, list(RECIPES)))
    return name


def _assemble(
    layers: list[tuple[str, dict[str, Any]]], flat: dict[str, tuple[str, dict[str, Any]]]
) -> RunConfig:
    recipe = _recipe_name(layers)
    spec = options(recipe)
    merged: dict[str, Any] = {}
    for source, layer in layers:
        for key, value in layer.items():
            if key == "__flat__":
                migrated = _migrate_flat(value, recipe)
                suffix = flat[source][0]
                warnings.warn(
                    FlatConfigWarning(
                        f"{source} uses the old flat form of a config; it still works, and "
                        f"reads as this nested form:\n{format_nested(migrated, suffix)}"
                    ),
                    stacklevel=4,
                )
                merged.update(
                    {k: _parse(spec[_checked_key(k, spec)], v) for k, v in migrated.items()}
                )
                continue
            target = resolve_key(key, recipe) if source == "--set" else _checked_key(key, spec)
            merged[target] = _parse(spec[target], value)
    nodes: dict[str, dict[str, Any]] = {node: {} for node in NODES}
    for key, value in merged.items():
        node, _, name = key.partition(".")
        nodes[node][name] = value
    nodes["recipe"].pop("name", None)
    train = TrainConfig()
    return RunConfig(
        data=DataConfig(**nodes["data"]),
        model=ModelConfig(**nodes["model"]),
        recipe=recipe_node_class(recipe)(**nodes["recipe"]),
        train=dataclasses.replace(train, **nodes["train"]),
        eval=EvalConfig(**nodes["eval"]),
    )


# ---------------------------------------------------------------------------------------------
# command-line flags

#: flags whose name is not their field's: flag → tree key. Every other option of the data,
#: model, train and eval nodes is ``--<field>`` (underscores as dashes); the recipe's other
#: options are set with ``--set recipe.KEY=VALUE`` (or ``--set KEY=VALUE``).
FLAG_ALIASES: dict[str, str] = {
    "recipe": "recipe.name",
    "data": "data.name",
    "out": "train.out_dir",
    "temperature": "recipe.temperature",
}


@dataclass(frozen=True)
class Flag:
    """One generated ``contrastkit train`` flag."""

    param: str  # the Python parameter name
    decls: tuple[str, ...]  # ("--epochs",) or ("--compile/--no-compile",)
    key: str
    type: Any
    is_bool: bool
    help: str
    default_text: str


def _default_text(option: Option) -> str:
    """The default of a ``contrastkit train`` flag, in words (``the recipe's`` where the
    recipe decides it)."""
    if option.key == "recipe.temperature":
        return "the recipe's"
    if option.node == "train" and option.name in ("optimizer", "lr", "weight_decay"):
        return "the recipe's"
    return value_text(option)


def value_text(option: Option) -> str:
    """``option``'s default as it is written on the command line (``--set KEY=<this>``):
    ``none``, ``true``/``false``, a tuple as ``a,b``; ``from the data`` for a recipe field
    the data fills in (:data:`DATA_FILLED`)."""
    if option.node == "recipe" and option.name in DATA_FILLED:
        return "from the data"
    value = option.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(empty)"
    return str(value)


def recipe_options(recipe: str) -> list[Option]:
    """The options of recipe ``recipe`` that ``--set recipe.KEY=VALUE`` (or a config file's
    ``recipe`` section) sets: every field of its node but ``name``, in declaration order, each
    with its default and the help text of the recipe config's ``Attributes:`` docstring."""
    return [o for o in options(recipe).values() if o.node == "recipe" and o.name != "name"]


def cli_flags() -> list[Flag]:
    """The ``contrastkit train`` flags, generated from the tree: one per option of the data,
    model, train and eval nodes (dict-valued ones are set in a file or with ``--set``), plus
    :data:`FLAG_ALIASES`. Bool options are ``--x/--no-x``."""
    spec = options(DEFAULT_RECIPE)
    by_key = {v: k for k, v in FLAG_ALIASES.items()}
    keys = [k for k in spec if k.partition(".")[0] != "recipe" or k in by_key]
    flags = []
    for key in keys:
        option = spec[key]
        if typing.get_origin(option.type) is dict or option.type is dict:
            continue
        if key == "recipe.temperature":
            option = Option(key, float | None, None, "the loss temperature")
        name = by_key.get(key, option.name).replace("_", "-")
        names = [f"--{name}"] + (["--out-dir"] if key == "train.out_dir" else [])
        base = [a for a in typing.get_args(option.type) if a is not type(None)]
        is_bool = option.type is bool or base == [bool]
        decls = (f"--{name}/--no-{name}",) if is_bool else tuple(names)
        help_text = _first_sentence(option.help) or key
        flags.append(
            Flag(
                param=key.replace(".", "__"),
                decls=decls,
                key=key,
                type=option.type,
                is_bool=is_bool,
                help=f"{help_text} ({key}; default: {_default_text(option)})",
                default_text=_default_text(option),
            )
        )
    return flags


def _first_sentence(text: str) -> str:
    first = re.split(r"(?<=[^.]\w\.)\s+(?=[A-Za-z])", text, maxsplit=1)[0].strip()
    return first.rstrip(".") + "." if first else ""


def metavar(tp: Any) -> str:
    """The command line's name for values of type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return "|".join(metavar(a) for a in args if a is not type(None))
    if origin is tuple:
        return f"{metavar(args[0])},..."
    return {int: "INT", float: "FLOAT", bool: "BOOL", str: "TEXT"}.get(tp, "VALUE")


def note(message: str) -> None:
    """Print a note for the user on stderr."""
    print(f"note: {message}", file=sys.stderr)
