"""``contrastkit`` command-line entry point."""

from __future__ import annotations

import contextlib
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

import contrastkit
from contrastkit.cli._help import (
    HelpCommand,
    HelpGroup,
    epilog,
    examples_text,
    recipe_keys_text,
)

#: click's exceptions, wherever this typer takes click from (vendored or the click package)
_CLICK = sys.modules[typer.BadParameter.__module__]


class _OneLineErrors(TyperGroup):
    """The command group, with every usage error (an unknown option, a value of the wrong
    type, a missing option) in one line, as the commands' own errors: ``error: <what>
    (see contrastkit <command> --help)``, exit code 2, instead of click's framed
    box under the usage line."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except _CLICK.ClickException as err:
            if isinstance(err, getattr(_CLICK, "NoArgsIsHelpError", ())):
                err.show()  # a bare `contrastkit`: the help, as click shows it
                sys.exit(err.exit_code)
            ctx = getattr(err, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            text = " ".join(err.format_message().split())
            typer.secho(f"error: {text}{hint}", fg=typer.colors.RED, err=True)
            sys.exit(err.exit_code)
        except getattr(_CLICK, "Abort", typer.Abort):
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class _Group(HelpGroup, _OneLineErrors):
    """The command group: one-line usage errors, and flags shown without a type."""


app = typer.Typer(
    cls=_Group,
    name="contrastkit",
    help=(
        "Contrastive representation learning: exact losses and miners, recipes (SimCLR, "
        "SupCon, MoCo, CLIP, SimCSE, ...), training, evaluation and search."
    ),
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: each command's examples, (what it does, the command line), shown under its help; every
#: line is parsed by tests/cli/test_help.py (train's also run with --print-config)
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "train": [
        (
            "SimCLR on the built-in digits with a small CNN, 5 epochs:",
            "contrastkit train --data digits --recipe simclr --encoder small_cnn --epochs 5 "
            "--out runs/simclr",
        ),
        (
            "MoCo on digits with a recipe option and a train option changed (see Recipe "
            "options below):",
            "contrastkit train --recipe moco --set recipe.queue_size=8192 --set train.lr=0.1 "
            "--out runs/moco",
        ),
        (
            "SupCon with a lower loss temperature:",
            "contrastkit train --recipe supcon --encoder small_cnn --set recipe.temperature=0.1 "
            "--out runs/supcon",
        ),
        (
            "SimCSE on your own texts (a .txt file, one text per line), small Transformer:",
            "contrastkit train --data corpus.txt --recipe simcse --encoder small_text "
            "--out runs/simcse",
        ),
        (
            "CLIP on openclipart (tested on the Tux Paint stamps), the image tower locked (LiT):",
            "contrastkit train --recipe clip --data openclipart --encoder efficientnet_lite0 "
            "--set recipe.lock_image=true --out runs/clip",
        ),
        (
            "SCARF on your own table, evaluated at 1%, 10% and 100% of the labels:",
            "contrastkit train --recipe scarf --data customers.csv --target churn --out runs/scarf",
        ),
        (
            "XSimGCL on MovieLens-100K; then contrastkit recommend --encoder runs/xsimgcl:",
            "contrastkit train --recipe xsimgcl --data ml-100k --epochs 40 --batch-size 2048 "
            "--out runs/xsimgcl",
        ),
        (
            "Print the options a run would use (save them as run.json to edit):",
            "contrastkit train --recipe byol --epochs 100 --print-config",
        ),
        (
            "Options from a file, one of them changed here:",
            "contrastkit train --config run.json --set train.epochs=20 --out runs/byol",
        ),
        (
            "Continue the first run above after an interruption (the same options and --out):",
            "contrastkit train --recipe simclr --encoder small_cnn --epochs 5 --out runs/simclr "
            "--resume",
        ),
    ],
    "demo": [
        ("SimCLR on digits, under a minute; the report goes to runs/demo:", "contrastkit demo"),
        (
            "A longer run in another folder, without the progress bar:",
            "contrastkit demo --epochs 100 --out runs/demo100 --no-progress",
        ),
    ],
    "evaluate": [
        (
            "kNN and linear probe of a trained encoder on digits' test split, with a report:",
            "contrastkit evaluate --encoder runs/simclr --data digits "
            "--report runs/simclr/eval.html",
        ),
        (
            "A kNN with a fixed k only, without the probe:",
            "contrastkit evaluate --encoder runs/simclr --data digits --knn-k 20 "
            "--knn-select-k '' --no-probe",
        ),
    ],
    "embed": [
        (
            "Embeddings, ids and labels of digits' test split as a .npy file:",
            "contrastkit embed --encoder runs/simclr --data digits --split test "
            "--out runs/simclr/test.npy",
        ),
        (
            "The training split as a Parquet table (needs pyarrow, the parquet extra):",
            "contrastkit embed --encoder runs/simclr --data digits --split train "
            "--out runs/simclr/train.parquet",
        ),
    ],
    "index": [
        (
            "Index your own texts (one per line) with MiniLM:",
            "contrastkit index --data corpus.txt --out runs/corpus_index",
        ),
        (
            "Index the built-in movie snippets with an encoder trained by contrastkit train:",
            "contrastkit index --data movie-snippets --encoder runs/simcse --out runs/movies_index",
        ),
        (
            "Index images (the Tux Paint stamps, or a folder of yours) with a CLIP run:",
            "contrastkit index --data tuxpaint --encoder runs/clip --out runs/tux_index",
        ),
    ],
    "search": [
        (
            "The 5 texts of an index closest to a query:",
            'contrastkit search "a warm and funny film" --index runs/movies_index -k 5',
        ),
        (
            "Two queries at once, as JSON:",
            'contrastkit search "space travel" "a courtroom drama" --index runs/movies_index '
            "--json",
        ),
        (
            "Images for a caption (text→image) over an image index built with a CLIP run:",
            'contrastkit search "a red car" --index runs/tux_index -k 5',
        ),
    ],
    "zero-shot": [
        (
            "Classify the Tux Paint stamps into their 16 categories from the names alone:",
            "contrastkit zero-shot --encoder runs/clip --data tuxpaint --out runs/clip/zs",
        ),
        (
            "Your own images into classes you name, with your own prompt:",
            "contrastkit zero-shot --encoder runs/clip --data photos/ --classes cat,dog,car "
            "--templates 'a photo of a {}.'",
        ),
    ],
    "recommend": [
        (
            "The 10 films a trained recommender ranks first for user 42 (films they rated "
            "left out):",
            "contrastkit recommend --encoder runs/xsimgcl --user 42 -k 10",
        ),
        (
            "More like this item: the films whose embeddings are closest to film 50's:",
            "contrastkit recommend --encoder runs/xsimgcl --item 50 -k 5",
        ),
        (
            "Several users at once, as JSON:",
            "contrastkit recommend --encoder runs/xsimgcl --user 1 --user 2 --json",
        ),
    ],
    "anomaly": [
        (
            "Fit a detector on a folder of normal images (a tenth held out sets the threshold "
            "for a 5% false-positive rate):",
            "contrastkit anomaly fit --data normal/ --out runs/detector",
        ),
        (
            "Score new images: scores.csv, anomaly.json and report.html in the --out folder:",
            "contrastkit anomaly score --encoder runs/detector --data new/ --out runs/scores",
        ),
        (
            "Score a labelled folder and measure AUROC with 'ok' as the normal class:",
            "contrastkit anomaly score --encoder runs/detector --data checked/ --normal ok "
            "--out runs/checked",
        ),
        (
            "A table of normal rows (SCARF on the rows, kNN distance of the embeddings):",
            "contrastkit anomaly fit --data normal.csv --out runs/table_detector",
        ),
        (
            "Score new rows, and AUROC with the column 'status' saying which are normal:",
            "contrastkit anomaly score --encoder runs/table_detector --data new.csv "
            "--label-column status --normal ok --out runs/table_scores",
        ),
    ],
    "fewshot": [
        (
            "Label the images of query/ from a few labelled ones per class in support/<class>/:",
            "contrastkit fewshot --encoder runs/simclr --support support/ --query query/",
        ),
        (
            "Fine-tune a copy of the encoder on the support images first (SupCon), with a "
            "logistic-regression head and a report:",
            "contrastkit fewshot --encoder runs/simclr --support support/ --query query/ "
            "--method logistic --finetune-steps 30 --out runs/fewshot",
        ),
    ],
    "export": [
        (
            "An ONNX graph of a trained encoder (image, text, audio or table), checked against "
            "onnxruntime, with an int8 copy:",
            "contrastkit export --encoder runs/simclr --format onnx --quantize --out runs/simclr-onnx",
        ),
        (
            "A sentence-transformers folder of a Hugging Face text encoder "
            "(SentenceTransformer(path) loads it):",
            "contrastkit export --encoder runs/simcse --format sentence-transformers "
            "--out runs/simcse-st",
        ),
    ],
    "serve": [
        (
            "Search and explore a text index in the browser (http://127.0.0.1:8765):",
            "contrastkit serve --index runs/movies_index",
        ),
        (
            "An image index of a CLIP run, on another port, with a PCA map instead of UMAP:",
            "contrastkit serve --index runs/tux_index --port 8800 --map pca",
        ),
    ],
    "rl": [
        (
            "Train a pixel DQN agent with CURL on MiniGrid DoorKey, three seeds, with a report:",
            "contrastkit rl --env MiniGrid-DoorKey-5x5-v0 --curl --steps 100000 --seeds 0,1,2 "
            "--out runs/doorkey-curl",
        ),
        (
            "The same agent without the contrastive loss, and any other setting by key:",
            "contrastkit rl --no-curl --steps 100000 --set n_step=5 --out runs/doorkey-dqn",
        ),
        (
            "Continue an interrupted run exactly where its checkpoint left it:",
            "contrastkit rl --curl --steps 100000 --out runs/doorkey-curl --resume",
        ),
    ],
    "losses": [("Every loss and miner, with the paper it follows:", "contrastkit losses")],
    "recipes": [
        ("Every recipe's options, defaults and meanings:", "contrastkit recipes"),
        ("MoCo's and DINO's only:", "contrastkit recipes moco dino"),
    ],
}


def _print_version(value: bool) -> None:
    if value:
        typer.echo(contrastkit.__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Contrastive representation learning from the command line."""


def _examples(command: str) -> str:
    """The epilog of ``command``'s help: its examples."""
    return epilog(examples_text(EXAMPLES[command]))


@app.command(cls=HelpCommand)
def info() -> None:
    """Show versions and the compute this machine offers (CUDA, bf16 on CPU)."""
    import torch

    bf16_cpu = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    rows = {
        "contrastkit": contrastkit.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda available": str(torch.cuda.is_available()),
        "cpu capability": str(bf16_cpu),
        "threads": str(torch.get_num_threads()),
    }
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        typer.echo(f"{k:<{width}}  {v}")


@app.command(cls=HelpCommand, epilog=_examples("losses"))
def losses() -> None:
    """List the losses and miners: each one's function, nn.Module class and paper.

    What each computes and the paper it follows come from the docstrings.
    """
    from contrastkit.cli._help import toolbox_text

    for line in toolbox_text():
        typer.echo(line)


_RECIPE_NAMES = typer.Argument(
    None, metavar="NAME", help="Recipes to show (default: all).", show_default=False
)


@app.command(cls=HelpCommand, epilog=_examples("recipes"))
def recipes(names: list[str] | None = _RECIPE_NAMES) -> None:
    """List each recipe's options (train --set recipe.KEY=VALUE): defaults and meanings.

    Each recipe also names the optimiser, lr and weight decay it takes when train.optimizer,
    train.lr and train.weight_decay are left unset. Named recipes are shown with the whole
    meaning of each option, all recipes with its first sentence.
    """
    from contrastkit.app.config import ConfigError
    from contrastkit.cli._help import recipe_help
    from contrastkit.recipes import RECIPES

    try:
        lines = recipe_help(names or list(RECIPES), full=bool(names))
    except ConfigError as err:
        raise _error(err) from None
    for line in lines:
        typer.echo(line)


def _error(err: Exception) -> typer.Exit:
    """Print a one-line error and return the exit (code 2) to raise."""
    text = " ".join(str(err).split()) or type(err).__name__  # one line, whatever the message
    typer.secho(f"error: {text}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def _train(
    config: str | None,
    set_: list[str] | None,
    resume: bool,
    overwrite: bool,
    print_config: bool,
    **flags: object,
) -> None:
    """Train an encoder with a recipe, then evaluate it on the test split (results.json).

    Options come from the config tree's defaults, then a config file (--config: JSON, TOML
    or YAML with data, model, recipe, train and eval sections; old flat files still load),
    then the flags given here, then --set KEY=VALUE (a dotted key such as train.lr or
    recipe.queue_size, or a bare key that names one option, e.g. queue_size). The recipe's
    own options are set with --set: each recipe's are listed at the end of this page, under
    Recipe options. --print-config prints the resulting options.

    A folder that already holds a run is not overwritten: --resume continues it (its options
    must be the run's, as saved in run.json; only train.out_dir, train.progress,
    train.device, train.tensorboard, train.max_minutes, the options of the kNN monitor and of
    the collapse and divergence tests, and the eval options may change), and --overwrite
    replaces it.
    """
    import json
    import os
    import warnings

    from contrastkit.app.config import FlatConfigWarning, cli_flags, load_run_config, note

    keys = {flag.param: flag.key for flag in cli_flags()}
    given = {keys[param]: value for param, value in flags.items() if value is not None}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FlatConfigWarning)
            cfg = load_run_config(config, given, set_ or ())
        for w in caught:
            if issubclass(w.category, FlatConfigWarning):
                if os.environ.get("RANK", "0") == "0":  # once under torchrun
                    note(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except (ValueError, OSError) as err:
        raise _error(err) from None
    if print_config:
        typer.echo(json.dumps(cfg.resolved().to_dict(), indent=2))
        return
    from contrastkit import distributed as dist
    from contrastkit.app.experiment import run_experiment

    dist.init_from_env()  # under torchrun: join the process group (gloo on CPU, nccl on CUDA)
    try:
        results = run_experiment(cfg, resume=resume, overwrite=overwrite)
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    except RuntimeError as err:  # SIGINT/SIGTERM stopped training: one line, 128 + signal
        from contrastkit.train import TrainingInterrupted

        if not isinstance(err, TrainingInterrupted):
            raise
        if dist.rank() == 0:
            again = (
                "the same command (with --resume)" if resume else "the same command plus --resume"
            )
            _interrupted(err, cfg.train.out_dir, again)
        raise typer.Exit(128 + err.signal) from None
    except KeyboardInterrupt:  # a second signal while stopping (or one before training)
        if dist.rank() == 0:
            typer.echo(
                f"interrupted: stopped at once; the last checkpoint in {cfg.train.out_dir} (if "
                f"any) is kept: continue with the same command plus --resume",
                err=True,
            )
        raise typer.Exit(130) from None
    finally:
        main_process = dist.rank() == 0
        dist.shutdown()
    if not main_process:
        return
    for line in results.get("summary", []):  # the figures in words, each beside its baselines
        typer.echo(line)
    head = {"out_dir": cfg.train.out_dir, "train_seconds": round(results["train_seconds"], 1)}
    typer.echo(json.dumps(_summary(head, results.get("evaluation")), indent=2))


def _interrupted(err: Any, out_dir: str, how: str) -> None:
    """The one line (stderr) after a signal stopped training: where, and how to continue."""
    sep = "" if how.startswith(":") else " "
    typer.echo(
        f"interrupted ({err.signal_name}) at epoch {err.epoch}, step {err.epoch_step} of "
        f"{err.steps_per_epoch}: checkpoint saved in {out_dir}; continue with{sep}{how}",
        err=True,
    )


def _summary(head: dict, ev: dict | None, digits: int | None = 4) -> dict:
    """The JSON a command prints last: ``head`` (where the run went, how long it took), then
    the protocol's headline figures and its baseline's, to ``digits`` decimals (None: whole;
    results.json keeps them whole)."""
    ev = ev or {}
    out = dict(head)
    for key in ("protocol", "split", "baseline_name"):
        if key in ev:
            out[key] = ev[key]
    for group in ("metrics", "baseline"):
        figures = {
            k.split(".", 1)[1]: round(v, digits) if isinstance(v, float) and digits else v
            for k, v in ev.items()
            if k.startswith(group + ".")
        }
        if figures:
            out[group] = figures
    return out


def _train_command():
    """:func:`_train` with its signature: the command's own options, then one option per
    flag generated from the config tree (:func:`contrastkit.app.config.cli_flags`). Every
    generated option defaults to None, "not given": the tree holds the defaults."""
    import inspect

    from contrastkit.app.config import cli_flags, metavar

    kw = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(
            "config",
            kw,
            annotation=str | None,
            default=typer.Option(
                None,
                "--config",
                metavar="FILE",
                help="JSON/TOML/YAML file of options (flags and --set win over it).",
                rich_help_panel="Run",
            ),
        ),
        inspect.Parameter(
            "set_",
            kw,
            annotation=list[str] | None,
            default=typer.Option(
                None,
                "--set",
                metavar="KEY=VALUE",
                help="Set any option of the tree (repeatable; wins over flags and the file), "
                "e.g. --set train.lr=0.1 or --set recipe.queue_size=8192 (a bare key that "
                "names one option works too: --set queue_size=8192); each recipe's keys are "
                "listed below, under Recipe options.",
                rich_help_panel="Run",
            ),
        ),
        inspect.Parameter(
            "resume",
            kw,
            annotation=bool,
            default=typer.Option(
                False,
                "--resume",
                help="Continue the run in --out from its checkpoint (same options but "
                "train.out_dir, progress, device, tensorboard, max_minutes, the monitor's and "
                "warnings' options, and eval.*).",
                rich_help_panel="Run",
            ),
        ),
        inspect.Parameter(
            "overwrite",
            kw,
            annotation=bool,
            default=typer.Option(
                False,
                "--overwrite",
                help="Replace the run --out already holds (if any).",
                rich_help_panel="Run",
            ),
        ),
        inspect.Parameter(
            "print_config",
            kw,
            annotation=bool,
            default=typer.Option(
                False,
                "--print-config",
                help="Print the run's options as a nested config (JSON, a valid --config "
                "file) and exit.",
                rich_help_panel="Run",
            ),
        ),
    ]
    panels = {
        "data": "Data",
        "model": "Model",
        "recipe": "Recipe",
        "train": "Train",
        "eval": "Eval",
    }
    for flag in cli_flags():
        params.append(
            inspect.Parameter(
                flag.param,
                kw,
                annotation=bool | None if flag.is_bool else str | None,
                default=typer.Option(
                    None,
                    *flag.decls,
                    help=flag.help,
                    metavar=None if flag.is_bool else metavar(flag.type),
                    show_default=False,
                    rich_help_panel=panels[flag.key.partition(".")[0]],
                ),
            )
        )

    def train(**kwargs: object) -> None:
        _train(**kwargs)

    train.__doc__ = _train.__doc__
    train.__signature__ = inspect.Signature(params)
    train.__annotations__ = {p.name: p.annotation for p in params}
    return train


app.command(
    name="train",
    cls=HelpCommand,
    epilog=epilog(examples_text(EXAMPLES["train"]), recipe_keys_text()),
)(_train_command())


@app.command(cls=HelpCommand, epilog=_examples("demo"))
def demo(
    out: str = typer.Option("runs/demo", "--out", metavar="DIR", help="Output folder."),
    epochs: int = typer.Option(
        None,
        metavar="INT",
        help="Training epochs (default: the demo's, see contrastkit.app.experiment.demo_config).",
        show_default=False,
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run --out already holds (if any)."
    ),
) -> None:
    """Train SimCLR on the built-in digits; show what it buys on held-out test digits that
    are shifted, rotated and rescaled (raw pixels beside it), then on the clean test digits;
    write the report. It runs on one CPU thread unless OMP_NUM_THREADS says otherwise: its
    model is small, so a second thread saves a third of an epoch's time on a quiet machine but
    makes epochs ten times slower when another process holds the second core."""
    import os
    import time

    import torch

    start = time.time()
    from contrastkit.app.experiment import demo_config, run_experiment
    from contrastkit.app.pipeline import RUN_FILES
    from contrastkit.evaluate.robustness import TRANSFORMED_SPLIT

    held = [name for name in RUN_FILES if (Path(out) / name).exists()]
    if held and not overwrite:
        raise _error(
            ValueError(
                f"{out} already holds a run ({', '.join(held)}); --overwrite replaces it, or "
                "choose another --out."
            )
        )
    cfg = demo_config(out) if epochs is None else demo_config(out, epochs)
    cfg.train.progress = progress
    m = cfg.model
    typer.echo(
        f"contrastkit demo: SimCLR, {m.encoder} (width {m.width:g}), digits, "
        f"{cfg.train.epochs} epochs -> {out}"
    )
    threads = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    try:
        results = run_experiment(cfg, overwrite=overwrite)
    except (ValueError, OSError) as err:
        raise _error(err) from None
    except RuntimeError as err:  # SIGINT/SIGTERM stopped training: one line, 128 + signal
        from contrastkit.train import TrainingInterrupted

        if not isinstance(err, TrainingInterrupted):
            raise
        _interrupted(err, out, f": contrastkit train --config {Path(out) / 'run.json'} --resume")
        raise typer.Exit(128 + err.signal) from None
    except KeyboardInterrupt:  # a second signal while stopping
        typer.echo(
            f"interrupted: stopped at once; contrastkit demo --out {out} --overwrite starts it "
            "again",
            err=True,
        )
        raise typer.Exit(130) from None
    finally:
        torch.set_num_threads(threads)
    summary, ev = results["summary"], results["evaluation"]
    # first the point: held-out digits moved a little, where raw pixels fail; then clean ones
    for line in summary:
        if line.startswith(f"kNN accuracy, {TRANSFORMED_SPLIT}: "):
            typer.echo(line)
    typer.echo(summary[0])
    if ev["baseline.knn_accuracy"] >= ev["metrics.knn_accuracy"]:
        typer.echo(
            "  raw pixels win on the clean test digits (centred and size-normalised, so pixel\n"
            "  distance already works); the encoder's gain is robustness to small shifts, turns\n"
            "  and zooms (the line above)"
        )
    for line in summary:
        if line.startswith("linear-probe accuracy"):
            typer.echo(line)
    history = results["history"]
    per_epoch = sum(row["seconds"] for row in history) / max(1, len(history))
    typer.echo(
        f"trained in {results['train_seconds']:.0f} s ({len(history)} epochs, "
        f"{per_epoch:.2f} s each); evaluated and reported in "
        f"{results['total_seconds'] - results['train_seconds']:.0f} s; total "
        f"{time.time() - start:.0f} s"
    )
    typer.echo(f"report: {Path(results['report']).resolve()}")
    typer.echo(f"encoder: {Path(out).resolve() / 'encoder.safetensors'} (+ encoder.json)")


@app.command(cls=HelpCommand, epilog=_examples("evaluate"))
def evaluate(
    encoder: str = typer.Option(
        ..., metavar="DIR", help="Folder with encoder.safetensors + encoder.json."
    ),
    data: str = typer.Option(..., metavar="DATA", help="Labelled data set with a test split."),
    knn_k: int = typer.Option(
        None,
        metavar="INT",
        help="The neighbour count when --knn-select-k '' turns the choice of k off (default: "
        "train.knn_k's; lowered to a fifth of the training images when larger).",
        show_default=False,
    ),
    knn_select_k: str = typer.Option(
        None,
        metavar="K,...",
        help="Comma-separated k grid; the test kNN uses the best k on --val-size held-out "
        "training images ('' to use --knn-k; default: eval.knn_select_k's).",
        show_default=False,
    ),
    val_size: float = typer.Option(
        None,
        metavar="FLOAT",
        help="Training images (or fraction) held out to choose k (default: data.val_size's).",
        show_default=False,
    ),
    probe: bool = typer.Option(True, help="Also fit a linear probe."),
    report: str = typer.Option(None, metavar="FILE", help="Write an HTML report here."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the figures as one JSON object (full precision) instead."
    ),
) -> None:
    """Evaluate an exported encoder: kNN, linear probe, P/R/F1, precision@1, MAP@R.

    The kNN settings left out are those of a training run (the config tree's defaults); k
    and the probe's penalty are chosen on held-out training images, never on the test split,
    and k is at most a fifth of the training images. The stages show on stderr; the figures
    print in words, then which k was used and why, then where the report went (--json: one
    JSON object instead, full precision).
    """
    import json

    from contrastkit.app.experiment import evaluate_encoder

    try:
        with _stages():
            res = evaluate_encoder(
                encoder,
                data,
                knn_k=knn_k,
                knn_select_k=knn_select_k,
                val_size=val_size,
                probe=probe,
                report=report,
            )
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    where = (
        f"report: {Path(res['report']).resolve()}"
        if res.get("report")
        else "report: none written (--report FILE.html writes one)"
    )
    if as_json:
        head = {"encoder": encoder, "data": data, "report": res.get("report")}
        out = _summary(head, res, digits=None)  # --json: for programs, every digit
        out["knn"] = {k: res[f"details.{k}"] for k in ("k", "k_grid", "k_cap", "k_dropped")}
        out["chosen_on"] = res.get("chosen_on")
        typer.echo(json.dumps(out, indent=2))
        return
    for line in res["summary"]:
        typer.echo(line)
    typer.echo(where)


@contextlib.contextmanager
def _stages() -> Iterator[None]:
    """Show the stages the library logs at INFO (loading, embedding, choosing k, the linear
    probe, the report) on stderr while the block runs, each with the seconds since it began."""
    import logging
    import time

    t0 = time.perf_counter()

    class _Echo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            typer.echo(f"[{time.perf_counter() - t0:5.1f} s] {record.getMessage()}", err=True)

    logger = logging.getLogger("contrastkit")
    handler, level = _Echo(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@app.command(cls=HelpCommand, epilog=_examples("embed"))
def embed(
    encoder: str = typer.Option(
        ...,
        metavar="DIR",
        help="Folder with encoder.safetensors + encoder.json; for texts also minilm or a "
        "Hugging Face folder.",
    ),
    data: str = typer.Option(
        ...,
        metavar="DATA",
        help="Image data set name or folder, or texts: movie-snippets, a .txt (one text per "
        "line) / .csv / .tsv / .jsonl file; with a graph encoder: mutag, b3db, a TU folder, a "
        "CSV/TSV of SMILES (its --column) or an edge list.",
    ),
    out: str = typer.Option(..., "--out", metavar="FILE", help="Output .npy or .parquet file."),
    split: str = typer.Option(
        None,
        metavar="train|test",
        help="The image split to embed (default: test). Texts are embedded whole; graphs "
        "too, unless train/val/test picks a part of a molecule split.",
        show_default=False,
    ),
    column: str = typer.Option("text", metavar="NAME", help="Text column of a table file."),
    max_length: int = typer.Option(128, metavar="INT", help="Tokens per text."),
) -> None:
    """Write embeddings and ids (and labels) of an image split, or of every text of a text
    file, to .npy (ids and labels in <name>.ids.npy / <name>.labels.npy) or .parquet."""
    from contrastkit.app.experiment import embed_dataset

    try:
        with _stages():
            path = embed_dataset(
                encoder, data, out, split=split, column=column, max_length=max_length
            )
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    typer.echo(f"wrote {Path(path).resolve()}")


@app.command(cls=HelpCommand, epilog=_examples("index"))
def index(
    data: str = typer.Option(
        ...,
        metavar="DATA",
        help="movie-snippets, or a .txt (one text per line) / .csv / .tsv / .jsonl file; with "
        "a CLIP run: images (tuxpaint, openclipart, a folder, a caption folder or table).",
    ),
    out: str = typer.Option(..., "--out", metavar="DIR", help="Folder for the index."),
    encoder: str = typer.Option(
        "minilm",
        metavar="ENCODER",
        help="minilm, a folder written by contrastkit train (a CLIP run indexes images), or a "
        "Hugging Face folder.",
    ),
    column: str = typer.Option("text", metavar="NAME", help="Text column of a table file."),
    backend: str = typer.Option(
        "auto",
        metavar="auto|exact|usearch",
        help="exact, usearch (approximate), or auto (exact below 50,000 texts).",
    ),
    max_length: int = typer.Option(128, metavar="INT", help="Tokens per text."),
) -> None:
    """Embed a corpus with a text encoder, or images with a CLIP run, and save a search
    index (with the encoder's name)."""
    import time

    from contrastkit.app.text import build_search_index

    t0 = time.time()
    if (Path(encoder) / "clip.json").is_file():  # an image–text run: index images
        from contrastkit.app.image_text import build_image_index

        try:
            built = build_image_index(encoder, data, out, backend=backend)
        except (ValueError, OSError, ImportError) as err:
            raise _error(err) from None
        typer.echo(
            f"indexed {len(built)} images ({built.backend}) in {time.time() - t0:.1f} s → {out}"
        )
        return
    try:
        search = build_search_index(
            encoder, data, out, column=column, backend=backend, max_length=max_length
        )
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    typer.echo(
        f"indexed {len(search.index)} texts ({search.index.backend}) in {time.time() - t0:.1f} s "
        f"→ {out}"
    )


_QUERY_ARGUMENT = typer.Argument(
    ...,
    metavar="QUERY",
    help="One or more query texts; over an image index, an image file searches image→image.",
)


@app.command(cls=HelpCommand, epilog=_examples("search"))
def search(
    query: list[str] = _QUERY_ARGUMENT,
    index: str = typer.Option(
        ..., "--index", metavar="DIR", help="Folder written by contrastkit index."
    ),
    k: int = typer.Option(10, "-k", metavar="INT", help="Hits per query."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Top-k texts (or images, over an image index) closest to each query (cosine)."""
    import json
    import time

    from contrastkit.app.serve import load_any_search

    try:
        engine = load_any_search(index)
        t0 = time.perf_counter()
        hits = engine.search(list(query), k=k)
        ms = (time.perf_counter() - t0) * 1e3 / len(query)
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    if as_json:
        rows = [
            {"query": q, "hits": [{"id": h.id, "score": h.score, "text": h.text} for h in hs]}
            for q, hs in zip(query, hits)
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for q, hs in zip(query, hits):
        typer.echo(f"query: {q}")
        for h in hs:
            typer.echo(f"  {h.rank:>3}  {h.score:.4f}  [{h.id}]  {h.text}")
    typer.echo(f"({ms:.1f} ms per query, encoder and index loaded)")


_USER_OPTION = typer.Option(
    None, "--user", metavar="ID", help="A user id as in the data; repeat for several."
)
_ITEM_OPTION = typer.Option(
    None, "--item", metavar="ID", help="An item id: its most similar items; repeatable."
)


@app.command(cls=HelpCommand, epilog=_examples("recommend"))
def recommend(
    encoder: str = typer.Option(
        ...,
        metavar="RUN",
        help="The --out folder of a recommender run (two_tower, bpr_mf, lightgcn, sgl, simgcl, "
        "xsimgcl), or its recommender/ folder.",
    ),
    user: list[str] = _USER_OPTION,
    item: list[str] = _ITEM_OPTION,
    k: int = typer.Option(10, "-k", metavar="INT", help="Items per answer."),
    include_seen: bool = typer.Option(
        False, "--include-seen", help="Keep the user's training items among the answers."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Top-k items for a user (items they already met left out), or items like an item."""
    import json
    import time

    from contrastkit.index.recommend import Recommender

    if not user and not item:
        raise _error(
            ValueError("say whom to recommend for: --user ID, or --item ID for similar items.")
        )
    try:
        rec = Recommender.load(encoder)
        answers, times = [], []
        for u in user or []:
            t0 = time.perf_counter()
            hits = rec.recommend(u, k=k, exclude_seen=not include_seen)
            times.append(time.perf_counter() - t0)
            answers.append(("user", u, hits))
        for i in item or []:
            t0 = time.perf_counter()
            hits = rec.similar_items(i, k=k)
            times.append(time.perf_counter() - t0)
            answers.append(("item", i, hits))
    except (KeyError, ValueError, OSError) as err:
        raise _error(ValueError(err.args[0] if isinstance(err, KeyError) else err)) from None
    if as_json:
        rows = [
            {
                kind: who,
                "items": [
                    {"rank": h.rank, "id": h.item_id, "title": h.title, "score": h.score}
                    for h in hits
                ],
            }
            for kind, who, hits in answers
        ]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for kind, who, hits in answers:
        typer.echo(f"{'user' if kind == 'user' else 'like item'} {who}:")
        for h in hits:
            title = f"  {h.title}" if h.title else ""
            typer.echo(f"  {h.rank:>3}  {h.score:8.4f}  [{h.item_id}]{title}")
    ms = 1e3 * sorted(times)[len(times) // 2]
    typer.echo(f"({ms:.2f} ms per answer, median; {len(rec.item_ids)} items scored)")


_TEMPLATES_OPTION = typer.Option(
    None,
    "--templates",
    metavar="TEXT",
    help="A prompt with {} for the class name; repeat for several (default: an ensemble of 5).",
    show_default=False,
)


@app.command("zero-shot", cls=HelpCommand, epilog=_examples("zero-shot"))
def zero_shot(
    encoder: str = typer.Option(
        ..., metavar="RUN", help="The --out folder of a contrastkit train --recipe clip run."
    ),
    data: str = typer.Option(
        ...,
        metavar="DATA",
        help="tuxpaint, a folder of images (sub-folders are categories), a caption folder or "
        "a table.",
    ),
    classes: str = typer.Option(
        None,
        metavar="A,B,C",
        help="Class names, comma-separated (default: the data's categories).",
        show_default=False,
    ),
    templates: list[str] = _TEMPLATES_OPTION,
    out: str = typer.Option(
        None,
        "--out",
        metavar="DIR",
        help="Write zero_shot.json and report.html (confusion matrix) there.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
) -> None:
    """Classify images from class names and prompt templates alone, with a CLIP run; with
    categories in the data, top-1, balanced accuracy, chance and a confusion matrix."""
    import json

    from contrastkit.app.image_text import zero_shot as run_zero_shot

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    try:
        with _stages():
            result = run_zero_shot(encoder, data, names, list(templates or []) or None)
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    if out:
        _zero_shot_files(result, Path(out))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    if "balanced_accuracy" in result:
        typer.echo(
            f"zero-shot on {result['images']} images of {data}, {len(result['classes'])} "
            f"classes × {len(result['templates'])} templates: balanced accuracy "
            f"{result['balanced_accuracy']:.3f} (chance {result['chance_balanced_accuracy']:.3f})"
            f", top-1 {result['top1']:.3f} (always the largest class "
            f"{result['majority_top1']:.3f})"
        )
    else:
        for row in result["predictions"]:
            typer.echo(f"{row['class']}\t{row['image']}")
        if "note" in result:
            typer.echo(result["note"])
    if out:
        typer.echo(f"wrote {Path(out).resolve() / 'zero_shot.json'}")


def _zero_shot_files(result: dict[str, Any], out: Path) -> None:
    import json

    import numpy as np

    from contrastkit._io import atomic_write_bytes
    from contrastkit.evaluate.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "zero_shot.json", json.dumps(result, indent=2).encode())
    metrics: dict[str, Any] = {"data": result["data"], "images": result["images"]}
    for key in ("balanced_accuracy", "chance_balanced_accuracy", "top1", "majority_top1"):
        if key in result:
            metrics[key.replace("_", " ")] = result[key]
    metrics["templates"] = " | ".join(result["templates"])
    confusion = result.get("confusion_matrix")
    write_report(
        out / "report.html",
        title=f"contrastkit zero-shot on {result['data']}",
        metrics=metrics,
        classes=result["classes"],
        confusion=np.asarray(confusion) if confusion is not None else None,
        confusion_title=f"zero-shot classification, {result['images']} images",
        maps=(),
    )


@app.command("fewshot", cls=HelpCommand, epilog=_examples("fewshot"))
def fewshot(
    encoder: str = typer.Option(
        ...,
        metavar="RUN",
        help="An exported encoder folder (the --out of contrastkit train or anomaly fit).",
    ),
    support: str = typer.Option(
        ..., metavar="DIR", help="The labelled images: DIR/<class>/*.png, K a class."
    ),
    query: str = typer.Option(
        ...,
        metavar="DIR",
        help="The images to label (flat); with class sub-folders, accuracy is measured.",
    ),
    method: str = typer.Option(
        "prototype", metavar="prototype|logistic", help="Nearest class mean, or a logistic head."
    ),
    finetune_steps: int = typer.Option(
        0, metavar="INT", help="Fine-tune a copy of the encoder on the support set first (SupCon)."
    ),
    out: str = typer.Option(
        None,
        "--out",
        metavar="DIR",
        help="Write predictions.csv, fewshot.json and report.html there.",
        show_default=False,
    ),
    seed: int = typer.Option(0, metavar="INT", help="Fine-tuning and draws."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
) -> None:
    """Classify images from K labelled examples per class with a trained encoder (prototypes
    or a logistic head on its embeddings, optionally after fine-tuning on the support set)."""
    import json

    from contrastkit.app.fewshot import fewshot_folders, write_fewshot_files

    try:
        with _stages():
            result = fewshot_folders(encoder, support, query, method, finetune_steps, seed)
            if out:
                write_fewshot_files(result, out)
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    if not out:
        for row in result["predictions"]:
            typer.echo(f"{row['class']}\t{row['score']:.4f}\t{row['path']}")
    per = ", ".join(f"{k} {v}" for k, v in result["support_per_class"].items())
    line = f"{len(result['predictions'])} query images, {len(result['classes'])} classes ({per})"
    if "accuracy" in result:
        line += f"; accuracy {result['accuracy']:.4f} (largest class {result['chance']:.4f})"
    typer.echo(line)
    if out:
        typer.echo(f"wrote {Path(out).resolve()}")


anomaly_app = typer.Typer(
    cls=_Group,
    help="One-class anomaly detection: fit on normal images only, then score new images.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(anomaly_app, name="anomaly", epilog=_examples("anomaly"))


@anomaly_app.command("fit", cls=HelpCommand, epilog=_examples("anomaly"))
def anomaly_fit(
    data: str = typer.Option(
        ...,
        metavar="DATA",
        help="A folder of normal images (class sub-folders are allowed: all count as normal), "
        "or a table of normal rows (.csv/.tsv/.parquet; no label column).",
    ),
    out: str = typer.Option(..., "--out", metavar="DIR", help="Where to write the detector."),
    score: str = typer.Option(
        None,
        metavar="csi|knn|mahalanobis",
        help="The anomaly score (default: mahalanobis for images, knn for tables; csi is for "
        "images only).",
        show_default=False,
    ),
    drop: str = typer.Option(
        None, metavar="A,B", help="Tables: columns that are not features.", show_default=False
    ),
    encoder: str = typer.Option("small_cnn", metavar="small_cnn|resnet18", help="The network."),
    width: float = typer.Option(
        32, metavar="NUM", help="small_cnn: first-stage channels; resnet18: width multiplier."
    ),
    epochs: int = typer.Option(30, metavar="INT", help="Training epochs (the cap with --minutes)."),
    minutes: float = typer.Option(
        None, metavar="NUM", help="A training budget in minutes.", show_default=False
    ),
    batch_size: int = typer.Option(64, metavar="INT", help="Normal images per step."),
    lr: float = typer.Option(1e-3, metavar="NUM", help="Adam's learning rate."),
    image_size: int = typer.Option(
        None, metavar="INT", help="Resize to this square size.", show_default=False
    ),
    holdout: float = typer.Option(
        0.1, metavar="NUM", help="Part of the normal images kept out of training for the threshold."
    ),
    fpr: float = typer.Option(
        0.05, metavar="NUM", help="Target false-positive rate of the flag on normal images."
    ),
    seed: int = typer.Option(0, metavar="INT", help="Seed of training and the held-out draw."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="A progress bar."),
) -> None:
    """Train a CSI detector (SimCLR with rotations as extra negatives and a rotation head) on
    normal images only; the threshold is set on held-out normal images, never on anomalies."""
    from contrastkit.app.anomaly import DEFAULT_IMAGE_SCORE, AnomalyConfig, fit_detector
    from contrastkit.app.anomaly_tables import fit_table_detector, is_table_source
    from contrastkit.data.datasets import load_image_folder

    table = is_table_source(data)
    try:
        with _stages():
            cfg = AnomalyConfig(
                score=score or ("knn" if table else DEFAULT_IMAGE_SCORE),
                encoder=encoder,
                width=width,
                epochs=epochs,
                minutes=minutes,
                batch_size=batch_size,
                lr=lr,
                image_size=image_size,
                holdout=holdout,
                fpr=fpr,
                seed=seed,
                progress=progress,
            )
            if table:
                cols = [c.strip() for c in drop.split(",") if c.strip()] if drop else None
                det = fit_table_detector(data, cfg, out_dir=out, drop=cols, score=score)
            else:
                normal = load_image_folder(data, image_size=image_size, test_fraction=0.0).train
                det = fit_detector(normal, cfg, out_dir=out)
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    i = det.info
    what = "rows" if table else "images"
    typer.echo(
        f"trained on {i['trained_on']} normal {what} ({i['epochs']} epochs, "
        f"{i['train_seconds']:.0f} s); threshold {det.threshold:.4g} flags "
        f"{i['held_out_fpr']:.1%} of the {i['held_out']} held-out normal {what} (target "
        f"{cfg.fpr:.1%})"
    )
    typer.echo(f"wrote {Path(out).resolve()}")


@anomaly_app.command("score", cls=HelpCommand, epilog=_examples("anomaly"))
def anomaly_score(
    encoder: str = typer.Option(
        ..., metavar="RUN", help="The --out folder of contrastkit anomaly fit."
    ),
    data: str = typer.Option(
        ..., metavar="DATA", help="A folder of images, or a table for a table detector."
    ),
    out: str = typer.Option(
        None,
        "--out",
        metavar="DIR",
        help="Write scores.csv, anomaly.json and report.html there.",
        show_default=False,
    ),
    normal: str = typer.Option(
        None,
        metavar="A,B",
        help="With class sub-folders (or --label-column): the normal classes (the rest are "
        "anomalies), for AUROC.",
        show_default=False,
    ),
    label_column: str = typer.Option(
        None,
        metavar="NAME",
        help="Tables: the column that says which rows are normal (never a feature).",
        show_default=False,
    ),
    threshold: float = typer.Option(
        None, metavar="NUM", help="Another threshold than the detector's.", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
) -> None:
    """Score images with a fitted detector (higher = more anomalous) and flag those above its
    threshold; with --normal, AUROC against the folder's classes."""
    import json

    from contrastkit.app.anomaly import score_folder, write_anomaly_files
    from contrastkit.app.anomaly_tables import detector_kind, score_table

    names = [c.strip() for c in normal.split(",") if c.strip()] if normal else None
    try:
        with _stages():
            if detector_kind(encoder) == "table":
                result = score_table(encoder, data, label_column, names, threshold)
            else:
                result = score_folder(encoder, data, names, threshold)
            if out:
                write_anomaly_files(result, out)
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, indent=2))
        return
    if not out:
        for row in result["rows"]:
            where = row.get("path", row.get("row"))
            typer.echo(f"{row['score']:.6g}\t{'ANOMALY' if row['flag'] else 'ok'}\t{where}")
    line = (
        f"{result['flagged']} of {result['images']} {'rows' if result.get('_images') is None else 'images'} flagged (threshold "
        f"{result['threshold']:.4g})"
    )
    if "auroc" in result:
        line += (
            f"; AUROC {result['auroc']:.4f} with {', '.join(result['normal_classes'])} normal "
            f"(flagged: {result['fpr_at_threshold']:.1%} of the normal, "
            f"{result['tpr_at_threshold']:.1%} of the anomalous images)"
        )
    typer.echo(line)
    if out:
        typer.echo(f"wrote {Path(out).resolve()}")


def _rl_config(env: str, curl: bool, steps: int, sets: list[str] | None, **fixed):
    """An RLConfig from the command's options and ``--set key=value`` pairs (checked)."""
    import dataclasses

    from contrastkit.app.rl import RLConfig

    fields = {f.name: f for f in dataclasses.fields(RLConfig)}
    values: dict[str, object] = {"env": env, "curl": curl, "steps": steps, **fixed}
    for item in sets or []:
        key, eq, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in fields:
            raise ValueError(
                f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}."
            )
        kind = type(getattr(RLConfig(), key))
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                values[key] = raw.lower() in ("true", "1", "yes")
            else:
                values[key] = kind(raw)
        except ValueError:
            raise ValueError(f"--set {key}={raw}: expected a {kind.__name__}.") from None
    config = RLConfig(**values)
    config.validate()
    return config


_RL_SETS = typer.Option(
    None,
    "--set",
    metavar="KEY=VALUE",
    help="Any RLConfig field, e.g. n_step=5, lr=3e-4, eval_every=2500, device=cuda.",
)


@app.command("rl", cls=HelpCommand, epilog=_examples("rl"))
def rl(
    env: str = typer.Option(
        "MiniGrid-DoorKey-5x5-v0", metavar="ENV", help="A gymnasium environment id (pixels)."
    ),
    curl: bool = typer.Option(
        True, "--curl/--no-curl", help="Add CURL's contrastive loss to the agent's encoder."
    ),
    steps: int = typer.Option(100_000, metavar="INT", help="Environment steps per seed."),
    seeds: str = typer.Option("0", metavar="LIST", help="Comma-separated seeds, e.g. 0,1,2."),
    out: str = typer.Option(
        ..., "--out", metavar="DIR", help="Run folder: seed-<s>/ checkpoints, report.html."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoints in --out."),
    sets: list[str] | None = _RL_SETS,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
) -> None:
    """Train a pixel DQN agent (double, dueling, n-step) with or without CURL, evaluating on a
    schedule; writes checkpoints, the encoder, results.json and a report with learning curves."""
    import json

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        if not seed_list:
            raise ValueError("--seeds: give at least one seed, e.g. --seeds 0,1,2.")
        config = _rl_config(env, curl, steps, sets)
        from contrastkit.app.rl import run_seeds, summarise

        results = run_seeds(config, out, seed_list, resume=resume)
    except (ValueError, OSError, ImportError, KeyError) as err:
        raise _error(err) from None
    summary = summarise(results)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for r in results:
        last = r["evals"][-1]
        typer.echo(
            f"seed {r['config']['seed']}: step {last['step']}, evaluation return "
            f"{last['return']:.4f}, success {last['success']:.2f} ({r['steps_per_s']:.0f} env "
            f"steps/s, {r['updates_per_s']:.0f} updates/s, {r['precision']})"
        )
    typer.echo(
        f"mean over {len(results)} seeds: return {summary['return']:.4f}, success "
        f"{summary['success']:.2f}"
    )
    typer.echo(f"wrote {Path(out).resolve()}")


@app.command("export", cls=HelpCommand, epilog=_examples("export"))
def export(
    encoder: str = typer.Option(
        ...,
        metavar="DIR",
        help="An encoder folder (encoder.json + encoder.safetensors), e.g. a contrastkit train "
        "run; a CLIP run's towers are DIR/image and DIR/text.",
    ),
    fmt: str = typer.Option(
        "onnx", "--format", metavar="onnx|sentence-transformers", help="What to write."
    ),
    out: str = typer.Option(..., "--out", metavar="DIR", help="The folder to write."),
    quantize: bool = typer.Option(
        False, "--quantize", help="ONNX: also write encoder.int8.onnx (dynamic int8)."
    ),
    image_size: int = typer.Option(
        None,
        metavar="INT",
        help="ONNX, images: the side to check with (default: the run's).",
        show_default=False,
    ),
    opset: int = typer.Option(18, metavar="INT", help="ONNX opset."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a line."),
) -> None:
    """Write a deployable copy of a trained encoder: an ONNX graph (dynamic batch and length,
    checked against onnxruntime on two batch sizes and two lengths) or a sentence-transformers
    folder (checked to give the same embeddings)."""
    import json

    try:
        from contrastkit.app.deploy import (
            export_onnx,
            export_sentence_transformers,
            onnx_export_dict,
        )

        if fmt == "onnx":
            result = export_onnx(
                encoder, out, quantize=quantize, image_size=image_size, opset=opset
            )
            summary, line = onnx_export_dict(result), result.summary()
        elif fmt == "sentence-transformers":
            if quantize:
                raise ValueError("--quantize is for --format onnx.")
            summary = export_sentence_transformers(encoder, out)
            line = (
                f"sentence-transformers folder → {out}; SentenceTransformer(path).encode vs the "
                f"encoder on {summary['texts']} texts: max abs diff {summary['max_abs_diff']:.1e}"
            )
        else:
            raise ValueError(f"unknown --format {fmt!r}; use onnx or sentence-transformers.")
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None
    typer.echo(json.dumps(summary, indent=2, default=str) if as_json else line)


@app.command("serve", cls=HelpCommand, epilog=_examples("serve"))
def serve(
    index: str = typer.Option(
        ..., "--index", metavar="DIR", help="A folder written by contrastkit index."
    ),
    host: str = typer.Option(
        "127.0.0.1", metavar="HOST", help="Address to bind (0.0.0.0 opens it to the network)."
    ),
    port: int = typer.Option(8765, metavar="INT", help="Port."),
    map_method: str = typer.Option(
        "auto", "--map", metavar="auto|umap|pca", help="How the embedding map is drawn."
    ),
) -> None:
    """Serve a page to search an index (text → texts, text → images, image → images) and
    explore its embedding map, with a JSON API beside it (/search, /neighbors, /embed, /map)."""
    from contrastkit.app.serve import serve as run_server

    try:
        run_server(index, host, port, map_method, say=lambda line: typer.echo(line, err=True))
    except (ValueError, OSError, ImportError) as err:
        raise _error(err) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
