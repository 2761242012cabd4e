"""``contrastkit`` command-line entry point."""

from __future__ import annotations

import platform
from pathlib import Path

import typer

import contrastkit

app = typer.Typer(
    name="contrastkit",
    help=(
        "Contrastive representation learning: exact losses and miners, recipes (SimCLR, "
        "SupCon, MoCo, CLIP, SimCSE, ...), training, evaluation and search."
    ),
    no_args_is_help=True,
    add_completion=False,
)


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


@app.command()
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


@app.command()
def losses() -> None:
    """List the losses and miners in the toolbox, with the paper each one follows."""
    import contrastkit.losses as L
    import contrastkit.miners as M

    for mod in (L, M):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and name[0].islower() and obj.__doc__:
                first = obj.__doc__.strip().splitlines()[0]
                typer.echo(f"{mod.__name__.split('.')[-1]:>7}  {name:<28} {first}")


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
    own options are set with --set. --print-config prints the resulting options.

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
    except (ValueError, OSError) as err:
        raise _error(err) from None
    except RuntimeError as err:  # SIGINT/SIGTERM stopped training: one line, 128 + signal
        from contrastkit.train import TrainingInterrupted

        if not isinstance(err, TrainingInterrupted):
            raise
        if dist.rank() == 0:
            again = (
                "the same command (with --resume)" if resume else "the same command plus --resume"
            )
            typer.echo(
                f"interrupted ({err.signal_name}) at epoch {err.epoch}, step {err.epoch_step} "
                f"of {err.steps_per_epoch}: checkpoint saved in {cfg.train.out_dir}; continue "
                f"with {again}",
                err=True,
            )
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


def _summary(head: dict, ev: dict | None) -> dict:
    """The JSON a command prints last: ``head`` (where the run went, how long it took), then
    the protocol's headline figures and its baseline's."""
    ev = ev or {}
    out = dict(head)
    for key in ("protocol", "split", "baseline_name"):
        if key in ev:
            out[key] = ev[key]
    for group in ("metrics", "baseline"):
        figures = {k.split(".", 1)[1]: v for k, v in ev.items() if k.startswith(group + ".")}
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
                "names one option works too: --set queue_size=8192).",
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
            ),
        ),
        inspect.Parameter(
            "overwrite",
            kw,
            annotation=bool,
            default=typer.Option(
                False, "--overwrite", help="Replace the run --out already holds (if any)."
            ),
        ),
        inspect.Parameter(
            "print_config",
            kw,
            annotation=bool,
            default=typer.Option(
                False, "--print-config", help="Print the run's options as a nested config and exit."
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


app.command(name="train")(_train_command())


@app.command()
def demo(
    out: str = typer.Option("runs/demo", "--out", help="Output folder."),
    epochs: int = typer.Option(150, help="Training epochs."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run --out already holds (if any)."
    ),
) -> None:
    """Train SimCLR on the built-in digits, evaluate on the test split, write the report."""
    from contrastkit.app.experiment import demo_config, run_experiment
    from contrastkit.app.pipeline import RUN_FILES

    held = [name for name in RUN_FILES if (Path(out) / name).exists()]
    if held and not overwrite:
        raise _error(
            ValueError(
                f"{out} already holds a run ({', '.join(held)}); --overwrite replaces it, or "
                "choose another --out."
            )
        )
    cfg = demo_config(out, epochs)
    cfg.train.progress = progress
    typer.echo(f"contrastkit demo: SimCLR, ResNet-18 (1/4 width), digits, {epochs} epochs -> {out}")
    try:
        results = run_experiment(cfg, overwrite=overwrite)
    except (ValueError, OSError) as err:
        raise _error(err) from None
    for line in results["summary"][:1] + [
        ln for ln in results["summary"] if ln.startswith("linear-probe accuracy")
    ]:
        typer.echo(line)
    typer.echo(f"trained in {results['train_seconds']:.0f} s")
    typer.echo(f"report: {Path(results['report']).resolve()}")
    typer.echo(f"encoder: {Path(out).resolve() / 'encoder.safetensors'} (+ encoder.json)")


@app.command()
def evaluate(
    encoder: str = typer.Option(..., help="Folder with encoder.safetensors + encoder.json."),
    data: str = typer.Option(..., help="Labelled data set with a test split."),
    knn_k: int = typer.Option(
        None,
        help="Fixed neighbour count, reported beside the chosen k (default: train.knn_k's).",
        show_default=False,
    ),
    knn_select_k: str = typer.Option(
        None,
        help="Comma-separated k grid; the test kNN uses the best k on --val-size held-out "
        "training images ('' to use --knn-k; default: eval.knn_select_k's).",
        show_default=False,
    ),
    val_size: float = typer.Option(
        None,
        help="Training images (or fraction) held out to choose k (default: data.val_size's).",
        show_default=False,
    ),
    probe: bool = typer.Option(True, help="Also fit a linear probe."),
    report: str = typer.Option(None, help="Write an HTML report here."),
) -> None:
    """Evaluate an exported encoder: kNN, linear probe, P/R/F1, precision@1, MAP@R.

    The kNN settings left out are those of a training run (the config tree's defaults).
    """
    import json

    from contrastkit.app.config import RunConfig
    from contrastkit.app.experiment import evaluate_encoder

    run = RunConfig()
    try:
        ks = run.eval.knn_select_k
        if knn_select_k is not None:
            ks = tuple(int(k) for k in knn_select_k.replace(" ", "").split(",") if k)
        res = evaluate_encoder(
            encoder,
            data,
            knn_k=run.train.knn_k if knn_k is None else knn_k,
            knn_temperature=run.train.knn_temperature,
            knn_select_k=ks,
            val_size=run.data.val_size if val_size is None else val_size,
            seed=run.train.seed,
            probe=probe,
            report=report,
        )
    except (ValueError, FileNotFoundError) as err:
        raise _error(err) from None
    for line in res.pop("summary"):
        typer.echo(line)
    if report:
        typer.echo(f"report: {Path(report).resolve()}")
    typer.echo(json.dumps(_summary({"encoder": encoder, "data": data}, res), indent=2))


@app.command()
def embed(
    encoder: str = typer.Option(..., help="Folder with encoder.safetensors + encoder.json."),
    data: str = typer.Option(..., help="Data set name or folder."),
    out: str = typer.Option(..., "--out", help="Output .npy or .parquet file."),
    split: str = typer.Option("test", help="train or test."),
) -> None:
    """Write embeddings and ids (and labels) of a data split to .npy or .parquet."""
    from contrastkit.app.experiment import embed_dataset

    try:
        path = embed_dataset(encoder, data, out, split=split)
    except (ValueError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
    typer.echo(f"wrote {path}")


@app.command()
def index(
    data: str = typer.Option(
        ..., help="movie-snippets, or a .txt (one text per line) / .csv / .tsv / .jsonl file."
    ),
    out: str = typer.Option(..., "--out", help="Folder for the index."),
    encoder: str = typer.Option(
        "minilm", help="minilm, a folder written by contrastkit train, or a Hugging Face folder."
    ),
    column: str = typer.Option("text", help="Text column of a table file."),
    backend: str = typer.Option(
        "auto", help="exact, usearch (approximate), or auto (exact below 50,000 texts)."
    ),
    max_length: int = typer.Option(128, help="Tokens per text."),
) -> None:
    """Embed a corpus with a text encoder and save a search index (with the encoder's name)."""
    import time

    from contrastkit.app.text import build_search_index

    t0 = time.time()
    try:
        search = build_search_index(
            encoder, data, out, column=column, backend=backend, max_length=max_length
        )
    except (ValueError, FileNotFoundError, ImportError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
    typer.echo(
        f"indexed {len(search.index)} texts ({search.index.backend}) in {time.time() - t0:.1f} s "
        f"→ {out}"
    )


_QUERY_ARGUMENT = typer.Argument(..., help="One or more query texts.")


@app.command()
def search(
    query: list[str] = _QUERY_ARGUMENT,
    index: str = typer.Option(..., "--index", help="Folder written by contrastkit index."),
    k: int = typer.Option(10, "-k", help="Hits per query."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Top-k texts of an index closest to each query (cosine similarity)."""
    import json
    import time

    from contrastkit.app.text import load_search

    try:
        engine = load_search(index)
        t0 = time.perf_counter()
        hits = engine.search(list(query), k=k)
        ms = (time.perf_counter() - t0) * 1e3 / len(query)
    except (ValueError, FileNotFoundError, ImportError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
