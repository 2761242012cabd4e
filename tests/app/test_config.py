"""The config tree: one declaration per option, keys and values checked, old flat files migrated."""

from __future__ import annotations

import dataclasses
import json
import typing
import warnings
from pathlib import Path

import pytest

from contrastkit.app.config import (
    FLAG_ALIASES,
    FLAT_KEYS,
    NODES,
    ConfigError,
    FlatConfigWarning,
    RunConfig,
    cli_flags,
    load_run_config,
    options,
    recipe_node_class,
    resolve_key,
)
from contrastkit.recipes import RECIPES, SimCLRConfig, TextSupConConfig
from contrastkit.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]

#: option names that two nodes a user can set together both declare, and why that is right
EXCEPTIONS: dict[str, tuple[frozenset[str], str]] = {
    "name": (
        frozenset({"data", "recipe"}),
        "data.name (the data set) and recipe.name (the recipe) are each node's own name, not "
        "one option with two defaults; a bare 'name' is ambiguous and refused, and the flags "
        "are --data and --recipe.",
    ),
    "seed": (
        frozenset({"train", "recipe"}),
        "recipe.seed (simcse, text_supcon) seeds only the text views' random edits, train.seed "
        "the run (weights, batch order, validation split); they are kept apart so that one can "
        "vary without the other. A bare 'seed' is ambiguous and refused with both candidates; "
        "--seed is train.seed.",
    ),
}

#: train command options that are not options of the tree
COMMAND_ONLY = {"config", "set_", "resume", "overwrite", "print_config", "help"}


def _dataclasses_under(cls: type, seen: set[type]) -> list[type]:
    """``cls`` and every dataclass reachable through its fields' types."""
    if cls in seen or not dataclasses.is_dataclass(cls):
        return []
    seen.add(cls)
    out = [cls]
    for base in cls.__mro__[1:]:  # a dataclass's dataclass bases declare its inherited fields
        out += _dataclasses_under(base, seen)
    for tp in typing.get_type_hints(cls).values():
        for arg in (tp, *typing.get_args(tp)):
            if isinstance(arg, type):
                out += _dataclasses_under(arg, seen)
    return out


def _declared(cls: type) -> dict[str, object]:
    """{field: default} of the fields of ``cls`` that have a default."""
    return {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def test_one_declaration_per_option():
    """No option name is declared with a default in two places a user can set together.

    The places: the root, the data, model, train and eval nodes (and every dataclass reachable
    from them), and the recipe node of each recipe in RECIPES (with its base config class).
    Recipe configs are alternatives, so two recipes may share a field name; a recipe field and
    a field of another node may not, unless listed in EXCEPTIONS with the reason.
    """
    fixed: dict[str, list[type]] = {"root": [RunConfig]}
    for node, cls in NODES.items():
        if cls is not None:
            fixed[node] = _dataclasses_under(cls, set())
    assert TrainConfig in fixed["train"]
    problems = []
    for recipe in RECIPES:
        places = {**fixed, "recipe": _dataclasses_under(recipe_node_class(recipe), set())}
        assert RECIPES[recipe][1] in places["recipe"]
        where: dict[str, set[str]] = {}
        for place, classes in places.items():
            for cls in classes:
                for name in _declared(cls):
                    where.setdefault(name, set()).add(place)
        for name, found in where.items():
            if len(found) > 1 and not (name in EXCEPTIONS and found == EXCEPTIONS[name][0]):
                problems.append(f"{name!r} declared in {sorted(found)} (recipe {recipe})")
    assert not problems, "\n".join(sorted(set(problems)))
    for name, (nodes, reason) in EXCEPTIONS.items():  # each exception is still needed
        assert reason and any(
            nodes <= {k.partition(".")[0] for k in options(r) if k.endswith(f".{name}")}
            for r in RECIPES
        ), name


def test_the_train_node_is_train_config_and_nothing_redeclares_it():
    assert RunConfig().train.__class__ is TrainConfig
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for cls in (RunConfig, *(c for c in NODES.values() if c not in (None, TrainConfig))):
        assert not train_fields & {f.name for f in dataclasses.fields(cls)}, cls


def test_cli_options_are_generated_from_the_tree_and_declare_no_default():
    from typer.main import get_command

    from contrastkit.cli.main import app

    command = get_command(app).commands["train"]
    flags = {f.param: f for f in cli_flags()}
    spec = options()
    tree_names = {k.rpartition(".")[2] for r in RECIPES for k in options(r)}
    seen_keys, seen_decls = set(), set()
    for param in command.params:
        if param.name in COMMAND_ONLY:
            assert param.name.rstrip("_") not in tree_names, param.name
            continue
        assert param.name in flags, f"--{param.name} is not generated from the tree"
        flag = flags[param.name]
        assert flag.key in spec and flag.key not in seen_keys
        seen_keys.add(flag.key)
        # the tree holds the default; the flag's None means "not given"
        assert param.default is None, f"{param.name} declares a default {param.default!r}"
        for decl in (*param.opts, *param.secondary_opts):
            assert decl not in seen_decls, decl
            seen_decls.add(decl)
    assert set(flags) <= {p.name for p in command.params}
    # every non-dict option of the data, model, train and eval nodes has a flag
    expected = {
        k
        for k, o in spec.items()
        if not k.startswith("recipe.") and typing.get_origin(o.type) is not dict
    } | {v for v in FLAG_ALIASES.values()}
    assert seen_keys == expected
    old = "recipe data encoder width epochs batch-size lr optimizer temperature out config resume "
    old += "precision compile no-compile grad-cache seed max-minutes fit-to-budget progress "
    old += "no-progress report no-report linear-probe no-linear-probe set"
    assert {f"--{o}" for o in old.split()} <= seen_decls | {"--config", "--resume", "--set"}


def test_keys_dotted_bare_and_unknown():
    assert resolve_key("train.lr") == "train.lr"
    assert resolve_key("queue_size", "moco") == "recipe.queue_size"
    assert resolve_key("batch-size") == "train.batch_size"
    assert resolve_key("recipe") == "recipe.name"
    with pytest.raises(ConfigError, match=r"ambiguous.*recipe\.seed or train\.seed"):
        resolve_key("seed", "simcse")
    with pytest.raises(ConfigError) as err:
        resolve_key("train.lrr")
    msg = str(err.value)
    assert "did you mean 'train.lr'?" in msg
    assert msg.split("valid keys: ")[1].startswith("train.lr, ")
    with pytest.raises(ConfigError, match=r"unknown key 'recipe\.queue_size'"):
        resolve_key("recipe.queue_size", "simclr")  # simclr has no queue


def test_values_are_parsed_and_bad_types_name_the_key():
    cfg = load_run_config(
        sets=[
            "train.lr=0.1",
            "epochs=3",
            "train.max_minutes=none",
            "eval.knn_select_k=1,5",
            "crop_scale=[0.3, 1]",
            "train.tensorboard=false",
            "report_maps=tsne",
            "small_input=true",
        ]
    )
    assert cfg.train.lr == 0.1 and cfg.train.epochs == 3 and cfg.train.max_minutes is None
    assert cfg.eval.knn_select_k == (1, 5) and cfg.recipe.crop_scale == (0.3, 1.0)
    assert cfg.train.tensorboard is False and cfg.eval.report_maps == ("tsne",)
    assert cfg.model.small_input is True
    assert load_run_config(sets=["train.tensorboard=auto"]).train.tensorboard == "auto"
    for pair, expected in [
        ("train.epochs=abc", "train.epochs expects an integer, got 'abc'"),
        ("train.lr=fast", "train.lr expects a number or none, got 'fast'"),
        ("eval.report=maybe", "eval.report expects true or false, got 'maybe'"),
        ("crop_scale=[1, 2, 3]", "recipe.crop_scale expects a list of 2"),
    ]:
        with pytest.raises(ConfigError, match=expected.replace("[", r"\[")):
            load_run_config(sets=[pair])
    with pytest.raises(ConfigError, match=r"train\.epochs expects an integer, got 2\.5"):
        RunConfig.from_dict({"train": {"epochs": 2.5}})
    with pytest.raises(ConfigError, match=r"model\.width expects a number, got True"):
        RunConfig.from_dict({"model": {"width": True}})
    with pytest.raises(ConfigError, match="--set takes KEY=VALUE"):
        load_run_config(sets=["train.lr"])
    with pytest.raises(ConfigError, match="unknown section 'trian' \\(did you mean 'train'"):
        RunConfig.from_dict({"trian": {"lr": 0.1}})


def test_precedence_defaults_file_flags_set(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = 3\nlr = 0.5\n[recipe]\nname = "moco"\nqueue_size = 64\n')
    cfg = load_run_config(path)
    assert (cfg.train.epochs, cfg.train.lr, cfg.recipe.queue_size) == (3, 0.5, 64)
    assert cfg.train.batch_size == TrainConfig().batch_size
    cfg = load_run_config(path, {"train.epochs": "4"}, ["train.epochs=5", "queue_size=128"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.recipe.queue_size) == (5, 0.5, 128)
    cfg = load_run_config(path, {"train.epochs": "4"})
    assert cfg.train.epochs == 4
    # another recipe on the command line: the file's moco options no longer apply
    with pytest.raises(ConfigError, match=r"unknown key 'recipe\.queue_size'"):
        load_run_config(path, {"recipe.name": "simclr"})


FLAT = {
    "recipe": "simclr",
    "data": "fashion-mnist",
    "epochs": 3,
    "temperature": 0.2,
    "proj_hidden": None,
    "crop_min_scale": 0.4,
    "flip": 0.0,
    "recipe_options": {"image_size": 20},
    "max_minutes": None,
    "report_maps": ["tsne"],
    "seed": 3,
    "out_dir": "runs/x",
}
NESTED = {
    "data": {"name": "fashion-mnist"},
    "recipe": {
        "name": "simclr",
        "temperature": 0.2,
        "crop_scale": [0.4, 1.0],
        "flip": 0.0,
        "image_size": 20,
    },
    "train": {"epochs": 3, "max_minutes": None, "seed": 3, "out_dir": "runs/x"},
    "eval": {"report_maps": ["tsne"]},
}


def _write(path: Path, values: dict) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(values))
    elif path.suffix == ".yaml":
        import yaml

        path.write_text(yaml.safe_dump(values))
    else:  # TOML has no null: an option left out is its default

        def clean(d):
            return {
                k: clean(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None
            }

        from contrastkit.app.config import format_nested

        values = clean(values)
        top = {k: v for k, v in values.items() if not isinstance(v, dict) or k not in NODES}
        sections = {k: v for k, v in values.items() if k not in top}
        lines = [f"{k} = {json.dumps(v)}" for k, v in top.items() if not isinstance(v, dict)]
        for k, v in top.items():
            if isinstance(v, dict):
                lines.append(f"[{k}]")
                lines += [f"{kk} = {json.dumps(vv)}" for kk, vv in v.items()]
        flat = {f"{n}.{k}": v for n, sec in sections.items() for k, v in sec.items()}
        path.write_text("\n".join(lines) + "\n" + (format_nested(flat, ".toml") if flat else ""))
    return path


@pytest.mark.parametrize("suffix", [".json", ".toml", ".yaml"])
def test_an_old_flat_file_reads_as_its_nested_form(tmp_path, suffix):
    nested = load_run_config(_write(tmp_path / f"nested{suffix}", NESTED))
    with pytest.warns(FlatConfigWarning) as caught:
        flat = load_run_config(_write(tmp_path / f"flat{suffix}", FLAT))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "old flat form" in message
    assert flat == nested
    assert flat.recipe.crop_scale == (0.4, 1.0) and flat.train.seed == 3
    assert flat.recipe.proj_hidden == SimCLRConfig.proj_hidden  # None: the recipe's default
    # the note shows the nested form, and that form reads back to the same config
    shown = message.split("nested form:\n", 1)[1]
    again = tmp_path / f"again{suffix}"
    again.write_text(shown)
    assert load_run_config(again) == nested


def test_flat_migration_table_covers_the_old_keys():
    old = set(FLAT_KEYS) | {f.name for f in dataclasses.fields(TrainConfig)}
    keys = set(options())
    for key in old - {"recipe_options", "crop_min_scale"}:
        target = FLAT_KEYS.get(key, f"train.{key}")
        assert target in keys or target.startswith("recipe."), key
    # text recipes had no views: flip and crop_min_scale were ignored, and still are
    with pytest.warns(FlatConfigWarning):
        cfg = RunConfig.from_dict({"recipe": "text_supcon", "flip": 0.5, "crop_min_scale": 0.2})
    assert cfg.recipe_config() == TextSupConConfig()
    # supervised kept crops of area ≥ 0.5
    with pytest.warns(FlatConfigWarning):
        cfg = RunConfig.from_dict({"recipe": "supervised", "crop_min_scale": 0.2})
    assert cfg.recipe.crop_scale == (0.5, 1.0)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    raw = json.loads(path.read_text())
    flat_form = any(k not in NODES or not isinstance(v, dict) for k, v in raw.items())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = RunConfig.from_file(path)
    assert [w.category for w in caught] == ([FlatConfigWarning] if flat_form else [])
    name = raw["recipe"] if flat_form else raw["recipe"]["name"]
    assert cfg.recipe.name == name
    resolved = cfg.resolved(image_shape=(1, 28, 28), num_classes=10)
    config = resolved.recipe_config()
    assert isinstance(config, RECIPES[name][1]) and config.channels == 1
    assert resolved.train.optimizer in ("sgd", "lars", "adamw", "adam")


def test_acceptance_runs_keep_their_options():
    """The loss-curve runs (benchmarks/loss_curves.py) as the old flat ExperimentConfig made
    them: same recipe config, optimiser, seeds, split and defaults."""
    flat = json.loads((ROOT / "configs/fmnist_simclr.json").read_text())
    flat.update(epochs=1, compile=False, max_minutes=None, fit_to_budget=False, report=False)
    flat.update(progress=False, out_dir="runs/x")
    with pytest.warns(FlatConfigWarning):
        cfg = RunConfig.from_dict(flat).resolved(image_shape=(1, 28, 28), num_classes=10)
    assert cfg.recipe_config() == SimCLRConfig(
        image_size=20, channels=1, temperature=0.2, proj_hidden=1024, crop_scale=(0.4, 1.0)
    )
    t = cfg.train
    assert (t.optimizer, t.lr, t.weight_decay, t.epochs, t.batch_size) == (
        "lars",
        0.4,
        1e-5,
        1,
        256,
    )
    assert (t.monitor_every, t.seed, t.compile, t.max_minutes, t.group_by_length) == (
        10,
        0,
        False,
        None,
        True,
    )
    assert (cfg.data.val_size, cfg.model.width, cfg.model.small_input) == (5000, 0.25, None)

    text = {"recipe": "text_supcon", "data": "movie-snippets", "encoder": "small_text"}
    text.update(epochs=1, batch_size=64, optimizer="adamw", lr=1e-3, report=False)
    with pytest.warns(FlatConfigWarning):
        cfg = RunConfig.from_dict(text).resolved()
    assert cfg.recipe_config() == TextSupConConfig()
    t = cfg.train
    assert (t.optimizer, t.lr, t.weight_decay, t.group_by_length) == ("adamw", 1e-3, 0.01, True)
    assert (cfg.model.max_length, cfg.model.width, cfg.data.val_size) == (128, 0.25, 0.1)

    from contrastkit.app.experiment import demo_config

    cfg = demo_config("runs/demo").resolved(image_shape=(1, 8, 8), num_classes=10)
    assert cfg.recipe_config() == SimCLRConfig(
        image_size=8, channels=1, temperature=0.2, flip=0.0, crop_scale=(0.5, 1.0)
    )
    t = cfg.train
    assert (t.optimizer, t.lr, t.weight_decay, t.epochs, t.batch_size, t.monitor_every) == (
        "lars",
        0.8,
        1e-5,
        60,
        128,
        10,
    )
    assert (cfg.model.encoder, cfg.model.width) == ("small_cnn", 0.25)
    assert cfg.eval.transformed_test and cfg.eval.report_maps == ("tsne",)


def test_run_config_in_python():
    from contrastkit.recipes import MoCoConfig

    cfg = RunConfig(recipe=MoCoConfig(queue_size=64))
    assert cfg.recipe.name == "moco" and cfg.recipe.queue_size == 64
    assert cfg.recipe.image_size is None  # the class default counts as unset: from the data
    assert cfg.resolved(image_shape=(3, 32, 32)).recipe_config().image_size == 32
    moved = cfg.updated({"train.lr": 0.2, "queue_size": 128})
    assert (moved.train.lr, moved.recipe.queue_size, cfg.recipe.queue_size) == (0.2, 128, 64)
    other = cfg.updated({"recipe": "byol"})
    assert other.recipe.name == "byol"
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert RunConfig.from_dict(cfg.to_flat()) == cfg
    with pytest.raises(ConfigError, match="train must be a TrainConfig"):
        RunConfig(train={"lr": 0.1})
