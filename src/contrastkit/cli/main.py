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


_SET_OPTION = typer.Option(
    None,
    "--set",
    help="A recipe option KEY=VALUE (repeatable), e.g. --set queue_size=8192 for moco.",
)


@app.command()
def train(
    ctx: typer.Context,
    recipe: str = typer.Option(
        "simclr",
        help="simclr, supcon, supervised, moco, mocov3, byol, simsiam, swav, barlow_twins, "
        "vicreg, nnclr or dino; text: simcse or text_supcon.",
    ),
    data: str = typer.Option(
        "digits",
        help="digits, mnist, fashion-mnist, or an image folder; for text recipes "
        "movie-snippets or a .txt/.csv/.tsv/.jsonl file.",
    ),
    encoder: str = typer.Option(
        "resnet18",
        help="resnet18/34/50, small_cnn or mlp; for text recipes minilm, small_text (a small "
        "Transformer), small_bag (SIF-weighted bag of word embeddings, for documents), or a "
        "local Hugging Face / exported encoder folder.",
    ),
    width: float = typer.Option(0.25, help="Channel multiplier (ResNet) / width (SmallCNN)."),
    epochs: int = typer.Option(10, help="Training epochs."),
    batch_size: int = typer.Option(256, help="Images per step."),
    lr: float = typer.Option(
        None,
        help="Base learning rate at batch 256 (default: the recipe's), scaled by batch/256 "
        "(lr_scaling in a config file: linear, sqrt or none).",
    ),
    optimizer: str = typer.Option(None, help="sgd, lars, adamw or adam (default: the recipe's)."),
    temperature: float = typer.Option(None, help="Loss temperature (default: the recipe's)."),
    out: str = typer.Option("runs/contrastkit", "--out", help="Output folder."),
    config: str = typer.Option(None, help="JSON/TOML/YAML file of options (CLI flags win)."),
    resume: bool = typer.Option(False, help="Continue from the checkpoint in --out."),
    precision: str = typer.Option("auto", help="auto (bf16 where supported), bf16, fp32."),
    compile: bool = typer.Option(
        False, help="torch.compile the encoder and heads (faster small conv nets on CPU)."
    ),
    grad_cache: int = typer.Option(
        0, help="Gradient caching: embed each batch in chunks of this many views (0: off)."
    ),
    seed: int = typer.Option(0, help="Random seed."),
    max_minutes: float = typer.Option(None, help="Stop after this wall time."),
    fit_to_budget: bool = typer.Option(
        False,
        help="With --max-minutes: lower --epochs to what the measured speed fits in the "
        "budget, so the learning-rate schedule completes.",
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    report: bool = typer.Option(True, help="Write report.html (t-SNE/UMAP maps, neighbours)."),
    linear_probe: bool = typer.Option(True, help="Fit a linear probe on the frozen features."),
    set_: list[str] = _SET_OPTION,
) -> None:
    """Train an encoder with a recipe, then evaluate it on the test split (results.json)."""
    import json

    from contrastkit.app.experiment import ExperimentConfig, run_experiment

    values = {}
    if config:
        try:
            values = dataclass_values(ExperimentConfig.from_file(config))
        except (ValueError, FileNotFoundError) as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from err
    given = {
        "report": report,
        "linear_probe": linear_probe,
        "recipe": recipe,
        "data": data,
        "encoder": encoder,
        "width": width,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "temperature": temperature,
        "out_dir": out,
        "precision": precision,
        "compile": compile,
        "grad_cache": grad_cache,
        "seed": seed,
        "max_minutes": max_minutes,
        "fit_to_budget": fit_to_budget,
        "progress": progress,
    }
    for key, value in given.items():
        param = "out" if key == "out_dir" else key
        if not config or ctx.get_parameter_source(param).name != "DEFAULT":
            values[key] = value
    if set_:
        try:
            values["recipe_options"] = {**values.get("recipe_options", {}), **_options(set_)}
        except ValueError as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from err
    from contrastkit import distributed as dist

    dist.init_from_env()  # under torchrun: join the process group (gloo on CPU, nccl on CUDA)
    try:
        cfg = ExperimentConfig.from_dict(values)
        results = run_experiment(cfg, resume=resume)
    except (ValueError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
    finally:
        main_process = dist.rank() == 0
        dist.shutdown()
    if not main_process:
        return
    summary = {"out_dir": cfg.out_dir, "train_seconds": round(results["train_seconds"], 1)}
    summary.update(results.get("test", {}))
    if "val" in results:  # text recipes: held-out texts, beside the baselines
        summary["val"] = results["val"]
        summary["baselines"] = results.get("baselines", {})
    typer.echo(json.dumps(summary, indent=2))


def _options(pairs: list[str]) -> dict:
    """``["queue_size=8192", "crop_scale=[0.3, 1]"]`` → values parsed as JSON where they
    parse (numbers, lists, true/false), as strings otherwise."""
    import json

    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}.")
        try:
            out[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[key.strip()] = text
    return out


@app.command()
def demo(
    out: str = typer.Option("runs/demo", "--out", help="Output folder."),
    epochs: int = typer.Option(150, help="Training epochs."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train SimCLR on the built-in digits, evaluate on the test split, write the report."""
    import dataclasses

    from contrastkit.app.experiment import demo_config, run_experiment

    cfg = dataclasses.replace(demo_config(out, epochs), progress=progress)
    typer.echo(f"contrastkit demo: SimCLR, ResNet-18 (1/4 width), digits, {epochs} epochs -> {out}")
    results = run_experiment(cfg)
    test = results.get("test", {})
    typer.echo(
        f"test kNN accuracy {test.get('knn_acc', float('nan')):.3f} "
        f"(raw pixels {test.get('raw_pixel_knn_acc', float('nan')):.3f}), "
        f"linear probe {test.get('linear_probe_acc', float('nan')):.3f}, "
        f"trained in {results['train_seconds']:.0f} s"
    )
    typer.echo(f"report: {Path(results['report']).resolve()}")
    typer.echo(f"encoder: {Path(out).resolve() / 'encoder.safetensors'} (+ encoder.json)")


@app.command()
def evaluate(
    encoder: str = typer.Option(..., help="Folder with encoder.safetensors + encoder.json."),
    data: str = typer.Option(..., help="Labelled data set with a test split."),
    knn_k: int = typer.Option(200, help="Fixed neighbour count, reported beside the chosen k."),
    knn_select_k: str = typer.Option(
        "1,5,10,20,50,100,200",
        help="Comma-separated k grid; the test kNN uses the best k on --val-size held-out "
        "training images ('' to use --knn-k).",
    ),
    val_size: float = typer.Option(0.1, help="Training images (or fraction) held out to choose k."),
    probe: bool = typer.Option(True, help="Also fit a linear probe."),
    report: str = typer.Option(None, help="Write an HTML report here."),
) -> None:
    """Evaluate an exported encoder: kNN, linear probe, P/R/F1, precision@1, MAP@R."""
    import json

    from contrastkit.app.experiment import evaluate_encoder

    try:
        ks = tuple(int(k) for k in knn_select_k.replace(" ", "").split(",") if k)
        res = evaluate_encoder(
            encoder,
            data,
            knn_k=knn_k,
            knn_select_k=ks,
            val_size=val_size,
            probe=probe,
            report=report,
        )
    except (ValueError, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
    typer.echo(json.dumps(res, indent=2))


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


def dataclass_values(obj) -> dict:
    import dataclasses

    return dataclasses.asdict(obj)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
