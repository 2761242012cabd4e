"""Recommenders in the one pipeline: interaction data, the model, its ranking evaluation and
the served recommender.

Data (``data.name``, :func:`contrastkit.data.interactions.load_interactions`): ``ml-100k``
(MovieLens-100K from the installed ``recbole`` package: 100,000 ratings of 1,682 films by 943
users, with titles, genres and demographics) or an interaction CSV/TSV/RecBole ``.inter``
file (``data.user_column``, ``data.item_column``, ``data.rating_column``,
``data.timestamp_column``). ``data.split``: ``random`` (each user's interactions 80/10/10,
seeded by ``train.seed``) or ``leave_last_out`` (by timestamp). ``data.min_rating`` > 0 keeps
only the interactions rated that high.

Models (``--recipe``): ``two_tower`` (id towers, plus the user and item features when the data
has them; in-batch sampled softmax with logQ correction), ``bpr_mf``, ``lightgcn``, ``sgl``,
``simgcl``, ``xsimgcl``. Their hyper-parameters are the recipe's options
(``--set recipe.dim=64`` ...).

Evaluation: full ranking over every item, each user's training and validation items left out,
Recall@K and NDCG@K (K = 10, 20) on the test interactions, beside popularity and the exact
chance figures (:class:`~contrastkit.evaluate.protocols.RankingProtocol`), and the same on
the validation interactions. The run writes ``RUN/recommender/``
(:class:`~contrastkit.index.recommend.Recommender`), which ``contrastkit recommend`` serves.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from contrastkit.evaluate.protocols import ProtocolResult

__all__ = [
    "InteractionSplits",
    "build_interaction_recipe",
    "evaluate_interaction_run",
    "interaction_results",
    "load_interaction_splits",
    "trained_recommender",
]

#: built-in interaction data (names as given to --data)
BUILTIN_INTERACTIONS = ("ml-100k", "ml100k", "movielens-100k")
_COLUMNS = ("user_column", "item_column", "rating_column", "timestamp_column")


@dataclasses.dataclass
class InteractionSplits:
    """An interaction data set as the pipeline's splits: ``train`` is the training pairs as
    trainer rows (:class:`~contrastkit.data.interactions.InteractionPairs`); ``val`` and
    ``test`` are the held-out pairs, used by the evaluation only."""

    interactions: Any
    train: Any
    val: Any
    test: Any
    name: str
    protocol: str = "ranking"
    note: str = ""


def load_interaction_splits(name: str, cfg: Any = None) -> InteractionSplits:
    """The interaction data of ``cfg.data`` split for training and evaluation."""
    from contrastkit.data.interactions import InteractionPairs, load_interactions

    d = cfg.data if cfg is not None else None
    kw: dict[str, Any] = {}
    if d is not None:
        kw = {
            "split": d.split or "random",
            "min_rating": d.min_rating or None,
            "user_column": d.user_column or None,
            "item_column": d.item_column or None,
            "rating_column": d.rating_column or None,
            "timestamp_column": d.timestamp_column or None,
        }
    seed = cfg.train.seed if cfg is not None else 0
    if name.lower().replace("_", "-") in BUILTIN_INTERACTIONS:
        from contrastkit.data.interactions import load_movielens_100k

        given = [f"data.{k}" for k in _COLUMNS if kw.get(k)]
        if given:
            raise ValueError(
                f"{name} is a built-in data set with known columns; drop {', '.join(given)} "
                "(they are for your own interaction files)."
            )
        inter = load_movielens_100k(
            split=kw.get("split", "random"), seed=seed, min_rating=kw.get("min_rating")
        )
    else:
        inter = load_interactions(name, seed=seed, **kw)
    return InteractionSplits(
        interactions=inter,
        train=InteractionPairs(inter),
        val=inter.val,
        test=inter.test,
        name=inter.name,
        note=inter.note,
    )


def build_interaction_recipe(cfg: Any, train: Any, data: InteractionSplits) -> tuple[Any, Any, str]:
    """(resolved config, recipe, encoder name) of a recommender on ``data``."""
    cfg = cfg.resolved()
    # whole-graph propagation and id lookups: nothing for torch.compile to gain
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, compile=False))
    if not isinstance(data, InteractionSplits):
        raise ValueError(
            f"the {cfg.recipe.name} recipe trains on user–item interactions; give "
            "--data ml-100k or an interaction CSV/.inter file."
        )
    recipe = cfg.recipe_class.from_interactions(data.interactions, cfg.recipe_config())
    # the exported encoder: both towers, or the graph models' embedding tables
    return cfg, recipe, "two_tower" if cfg.recipe.name == "two_tower" else "lightgcn"


def _known_pairs(inter: Any) -> Tensor:
    """Training + validation pairs: what a user has already met, left out of a ranking."""
    return torch.cat([inter.train, inter.val])


@torch.no_grad()
def final_embeddings(recipe: Any) -> tuple[Tensor, Tensor]:
    """(users (U, D), items (I, D)) float32 CPU embeddings of a trained recommender, in eval
    mode (no views, no noise)."""
    was = recipe.training
    recipe.eval()
    try:
        users = recipe.user_embeddings().float().cpu()
        items = recipe.item_embeddings().float().cpu()
    finally:
        recipe.train(was)
    return users, items


def evaluate_interaction_run(
    rec: Any, data: InteractionSplits, *, ks: tuple[int, ...] = (10, 20)
) -> tuple[ProtocolResult, ProtocolResult]:
    """(test result, validation result) of a trained recommender (its
    :class:`~contrastkit.index.recommend.Recommender`): full ranking, Recall@K and NDCG@K
    beside popularity and chance. On test, each user's training and validation items are left
    out of its ranking; on validation, its training items."""
    from contrastkit.evaluate.protocols import RankingProtocol

    inter = data.interactions
    protocol = RankingProtocol(ks=ks, score="dot")
    test = protocol.evaluate(rec.users, rec.items, _known_pairs(inter), inter.test, split="test")
    val = protocol.evaluate(rec.users, rec.items, inter.train, inter.val, split="val")
    return test, val


def trained_recommender(recipe: Any, data: InteractionSplits, meta: dict[str, Any]) -> Any:
    """The :class:`~contrastkit.index.recommend.Recommender` of a trained model: its final
    embeddings (computed once, in eval mode), raw ids, titles, and every known (training +
    validation) interaction left out of the recommendations."""
    from contrastkit.index.recommend import Recommender

    inter = data.interactions
    users, items = final_embeddings(recipe)
    return Recommender(
        users,
        items,
        seen=_known_pairs(inter),
        user_ids=inter.user_ids,
        item_ids=inter.item_ids,
        item_titles=inter.item_titles,
        score="dot",
        meta=meta,
    )


def interaction_results(
    cfg: Any,
    recipe: Any,
    frozen: Any,
    data: InteractionSplits,
    train: Any,
    val: Any,
    trainer: Any,
    results: dict[str, Any],
) -> None:
    """Evaluate a recommender run, save ``RUN/recommender/``, fill ``results`` and write
    the report (the Recall@K / NDCG@K table)."""
    from contrastkit.evaluate.report import metric_rows, write_report

    out = Path(cfg.train.out_dir)
    rec = trained_recommender(
        recipe, data, {"recipe": cfg.recipe.name, "data": data.name, "run": str(out)}
    )
    test_result, val_result = evaluate_interaction_run(rec, data)
    rec.save(out / "recommender")
    results["evaluation"] = test_result.to_dict()
    results["evaluation"].update({f"val.{k}": v for k, v in val_result.to_dict().items()})
    lines = [*test_result.format().splitlines(), val_result.summary_line()]
    if data.note:
        lines.append(data.note)
    lines.append(
        f"recommender saved to {out / 'recommender'}: contrastkit recommend --encoder {out}"
    )
    results["summary"] = lines
    results["recommender"] = str(out / "recommender")
    if not cfg.eval.report:
        return
    inter = data.interactions
    header = ["", *test_result.metrics]
    rows = [
        [f"{cfg.recipe.name}, test", *test_result.metrics.values()],
        ["popularity, test", *(test_result.baseline[k] for k in test_result.metrics)],
        ["chance, test", *(test_result.other_baselines["chance"][k] for k in test_result.metrics)],
        [f"{cfg.recipe.name}, validation", *val_result.metrics.values()],
        ["popularity, validation", *(val_result.baseline[k] for k in val_result.metrics)],
    ]
    metrics = {
        **metric_rows(lines[:1]),
        "recipe": cfg.recipe.name,
        "data": f"{data.name} ({inter.n_users} users, {inter.n_items} items; "
        f"{len(inter.train)} / {len(inter.val)} / {len(inter.test)} train / val / test "
        f"interactions, {getattr(inter, 'split', '')} split)",
        "epochs": trainer.epoch,
        "precision": trainer.precision,
    }
    examples = _example_rows(rec, inter)
    results["report"] = str(
        write_report(
            out / "report.html",
            title=f"contrastkit {cfg.recipe.name} on {data.name}",
            metrics=metrics,
            history=results["history"],
            tables=[
                ("Full ranking: Recall@K and NDCG@K (training items left out)", header, rows),
                *examples,
            ],
            seed=cfg.train.seed,
        )
    )


def _example_rows(rec: Any, inter: Any, users: int = 3, k: int = 10) -> list[Any]:
    """Tables of the top-k recommendations of a few users beside what they watched."""
    out = []
    test_users = torch.unique(inter.test[:, 0])[:users].tolist()
    for u in test_users:
        uid = inter.user_ids[u]
        held = {inter.item_ids[i] for i in inter.test[inter.test[:, 0] == u, 1].tolist()}
        recs = rec.recommend(uid, k=k)
        rows = [
            [r.rank, r.title or r.item_id, f"{r.score:.3f}", "yes" if r.item_id in held else ""]
            for r in recs
        ]
        out.append(
            (
                f"User {uid}: top {k} (held-out test items marked)",
                ["rank", "item", "score", "in test"],
                rows,
            )
        )
    return out
