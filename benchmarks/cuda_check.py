"""The CUDA paths, checked on a GPU machine when one is lent (CI has none).

Each check prints one line with what it measured; the script exits 1 when a check fails.

- losses: every id-based loss and the view-pair losses, in float64 on the GPU against float64
  on the CPU (the loss and the gradient of its inputs), and bf16 autocast on the GPU against
  float32 there;
- the trainer: SimCLR and SupCon on scikit-learn's digits on ``cuda``, fp32 and bf16 (finite
  losses, the loss falls), and resume against an uninterrupted run on the GPU (max weight
  difference; deterministic algorithms on, so it should be 0);
- the pixel RL agent (``[rl]`` extra) on ``cuda``: updates/s and environment steps/s of
  CURL and no-CURL runs, and resume against an uninterrupted run.

Usage (on the GPU machine)::

    python benchmarks/cuda_check.py [--rl-steps 6000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch

FAILED: list[str] = []


def report(name: str, ok: bool, text: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {text}", flush=True)
    if not ok:
        FAILED.append(name)


def check_losses(dev: torch.device) -> None:
    import contrastkit.losses as L

    g = torch.Generator().manual_seed(0)
    n, d = 64, 32
    q = torch.randn(n, d, generator=g, dtype=torch.float64)
    k = torch.randn(n, d, generator=g, dtype=torch.float64)
    ids = torch.arange(n) // 2
    labels = torch.randint(0, 6, (n,), generator=g)
    cases = {
        "info_nce": lambda a, b, i, y: L.info_nce(a, b, query_ids=i, key_ids=i),
        "info_nce chunked": lambda a, b, i, y: L.info_nce(
            a, b, query_ids=i, key_ids=i, chunked=True, block_rows=16
        ),
        "info_nce symmetric": lambda a, b, i, y: L.info_nce(
            a, b, query_ids=i, key_ids=i, symmetric=True
        ),
        "sup_con": lambda a, b, i, y: L.sup_con(torch.stack([a, b], 1), y),
        "nt_xent": lambda a, b, i, y: L.nt_xent(a, b),
        "sigmoid_pairwise": lambda a, b, i, y: L.sigmoid_pairwise(a, b, query_ids=i, key_ids=i),
        "triplet_margin": lambda a, b, i, y: L.triplet_margin(a, b, query_ids=y, key_ids=y),
        "contrastive_margin": lambda a, b, i, y: L.contrastive_margin(a, b, query_ids=y, key_ids=y),
        "debiased_info_nce": lambda a, b, i, y: L.debiased_info_nce(a, b, query_ids=i, key_ids=i),
        "hard_negative_info_nce": lambda a, b, i, y: L.hard_negative_info_nce(
            a, b, query_ids=i, key_ids=i
        ),
        "barlow_twins": lambda a, b, i, y: L.barlow_twins(a, b),
        "vicreg": lambda a, b, i, y: L.vicreg(a, b),
    }
    for name, fn in cases.items():
        try:
            outs = []
            for device in (torch.device("cpu"), dev):
                a = q.detach().clone().to(device).requires_grad_()
                b = k.detach().clone().to(device).requires_grad_()
                loss = fn(a, b, ids.to(device), labels.to(device))
                loss.backward()
                outs.append((loss.detach().cpu(), a.grad.cpu(), b.grad.cpu()))
            (l0, ga0, gb0), (l1, ga1, gb1) = outs
            diff = max(
                (l0 - l1).abs().item(),
                (ga0 - ga1).abs().max().item(),
                (gb0 - gb1).abs().max().item(),
            )
            a32, b32 = q.float().to(dev), k.float().to(dev)
            ref = fn(a32, b32, ids.to(dev), labels.to(dev)).item()
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                low = fn(a32, b32, ids.to(dev), labels.to(dev)).float().item()
            rel = abs(low - ref) / max(abs(ref), 1e-6)
            report(
                f"loss {name}",
                diff < 1e-10 and rel < 0.05,
                f"float64 cuda vs cpu max diff {diff:.1e} (loss {l0.item():.6f}); "
                f"bf16 autocast vs fp32 rel diff {rel:.1e}",
            )
        except Exception as err:
            report(f"loss {name}", False, f"{type(err).__name__}: {err}")


def check_trainer(dev: torch.device, tmp: Path) -> None:
    from contrastkit.data import load_digits
    from contrastkit.encoders import SmallCNN
    from contrastkit.recipes import SimCLR, SimCLRConfig, SupCon, SupConConfig
    from contrastkit.train import TrainConfig, Trainer

    train = load_digits().train.subset(range(640))

    def recipe(kind: str, seed: int = 0):
        torch.manual_seed(seed)
        enc = SmallCNN(in_channels=1, width=8, stages=2)
        if kind == "supcon":
            return SupCon(enc, SupConConfig(image_size=8, channels=1, flip=0, proj_hidden=32))
        return SimCLR(enc, SimCLRConfig(image_size=8, channels=1, flip=0, proj_hidden=32))

    def cfg(out: Path, precision: str, epochs: int = 3) -> TrainConfig:
        return TrainConfig(
            epochs=epochs,
            batch_size=128,
            lr=0.2,
            out_dir=str(out),
            progress=False,
            monitor_every=0,
            device=str(dev),
            precision=precision,
        )

    for kind in ("simclr", "supcon"):
        for precision in ("fp32", "bf16"):
            try:
                t0 = time.perf_counter()
                tr = Trainer(recipe(kind), train, cfg(tmp / f"{kind}_{precision}", precision))
                tr.fit()
                losses = [h["loss"] for h in tr.history]
                on = {p.device.type for p in tr.recipe.parameters()}
                report(
                    f"trainer {kind} {precision}",
                    all(torch.isfinite(torch.tensor(losses)))
                    and losses[-1] < losses[0]
                    and on == {dev.type},
                    f"losses {losses[0]:.4f} → {losses[-1]:.4f} over {tr.step} steps on "
                    f"{sorted(on)} in {time.perf_counter() - t0:.1f} s",
                )
            except Exception as err:
                report(f"trainer {kind} {precision}", False, f"{type(err).__name__}: {err}")

    for precision in ("fp32", "bf16"):
        try:
            full = Trainer(recipe("simclr"), train, cfg(tmp / f"full_{precision}", precision))
            full.fit()
            part = Trainer(recipe("simclr"), train, cfg(tmp / f"part_{precision}", precision))
            part.fit(stop_after_epoch=1)
            resumed = Trainer(
                recipe("simclr", 123), train, cfg(tmp / f"part_{precision}", precision)
            )
            resumed.fit(resume=True)
            a, b = full.recipe.state_dict(), resumed.recipe.state_dict()
            diff = max((a[x].float() - b[x].float()).abs().max().item() for x in a)
            report(
                f"trainer resume {precision}",
                diff == 0.0,
                f"max weight diff after resume {diff:.1e} (steps {full.step} / {resumed.step})",
            )
        except Exception as err:
            report(f"trainer resume {precision}", False, f"{type(err).__name__}: {err}")


def check_rl(dev: torch.device, tmp: Path, steps: int) -> None:
    try:
        from contrastkit.app.rl import RLConfig, train_agent
    except ImportError as err:
        report("rl", False, f"the [rl] extra is missing: {err}")
        return
    base = RLConfig(steps=steps, device=str(dev), eval_every=steps, eval_episodes=5)
    for curl in (True, False):
        name = "curl" if curl else "no-curl"
        try:
            c = dataclasses.replace(base, curl=curl)
            r = train_agent(c, tmp / f"rl_{name}", progress=False)
            report(
                f"rl {name} speed",
                r["updates"] > 0,
                f"{r['steps_per_s']:.0f} env steps/s, {r['updates_per_s']:.0f} updates/s "
                f"({r['precision']}, {r['updates']} updates in {r['seconds']:.0f} s), "
                f"last eval success {r['evals'][-1]['success']:.2f}",
            )
        except Exception as err:
            report(f"rl {name} speed", False, f"{type(err).__name__}: {err}")
    try:
        small = dataclasses.replace(base, steps=2400, learning_starts=1600, eval_every=1200)
        whole = train_agent(small, tmp / "rl_whole", progress=False)
        train_agent(small, tmp / "rl_parts", stop_at=1997, progress=False)
        rest = train_agent(small, tmp / "rl_parts", resume=True, progress=False)
        a, b = whole["agent"].state_dict(), rest["agent"].state_dict()
        diff = max((a[x].float() - b[x].float()).abs().max().item() for x in a)
        report(
            "rl resume",
            diff == 0.0,
            f"max weight diff after resume {diff:.1e} ({whole['updates']} updates)",
        )
    except Exception as err:
        report("rl resume", False, f"{type(err).__name__}: {err}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rl-steps", type=int, default=6000)
    ap.add_argument("--skip", default="", help="comma-separated: losses,trainer,rl")
    ap.add_argument("--device", default="cuda", help="cpu only to try this script out")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    print(
        f"torch {torch.__version__}, {name}, python {sys.version.split()[0]}",
        flush=True,
    )
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory() as d:
        if "losses" not in skip:
            check_losses(dev)
        if "trainer" not in skip:
            check_trainer(dev, Path(d))
        if "rl" not in skip:
            check_rl(dev, Path(d), args.rl_steps)
    print(f"{'all checks passed' if not FAILED else 'FAILED: ' + ', '.join(FAILED)}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    raise SystemExit(main())
