"""CURL on MiniGrid DoorKey-5x5 from pixels: CURL against the same agent without the
contrastive loss, three seeds each; learning curves, a state-decoding probe and speed.

Issue 23's acceptance lines, each printed as PASS/FAIL:

- CURL reaches ≥ 0.9 evaluation success rate within 100k environment steps, mean over 3 seeds
  (the mean success rate at the last evaluation, step 100k);
- at 50k steps CURL's mean evaluation return is above the no-CURL agent's (same seeds and
  settings);
- the state-decoding probe of CURL's encoder beats the no-CURL agent's and a random encoder's
  (mean accuracy over the probed state variables and seeds);
- a 100k-step run takes ≤ 20 minutes on this machine (the slowest run).

The protocol (fixed before the measured runs):

- the agent: :class:`contrastkit.app.rl.RLConfig`'s defaults (pixel encoder of CURL, dueling
  double DQN, 10-step returns, prioritized replay (α 0.5, β 0.4 → 1; since session 20,
  chosen on development seeds 103–106), Adam 5e-4, batch 32, one update every 4 steps after
  1,600 random steps, ε from 1 to 0.05 over 50k steps (since session 21, with prioritized
  replay on seeds 103–106; 20k before), target copy every 500 updates, random
  36-pixel crops of 3 stacked 40×40 frames for both agents, bf16 autocast for the update
  where supported), unless ``--set`` says otherwise (printed); those defaults were chosen
  on the development seed 100 (RESULTS.md lists each development run);
- the two agents differ only by CURL's loss (``curl``); seeds 0, 1, 2 for both;
- evaluation every 10,000 steps: 20 greedy episodes from fixed layouts (the same for every
  agent and seed);
- the probe: 40 episodes of a uniformly random policy (other layouts than training's), the
  first 30 episodes fit a linear classifier per state variable (the agent's cell, its
  heading, whether it carries the key) on the frozen encoder's features, the last 10 score
  it; a random encoder (same architecture, fresh initialisation) beside; the acceptance
  line compares the mean accuracy over the cell and the heading (``carrying`` is printed,
  not compared: a random policy rarely holds the key);
- settings are chosen on development seeds (``--seeds 100``) only, never on seeds 0–2.

Usage::

    python benchmarks/rl_doorkey.py --out /tmp/rl            # 6 runs of 100k steps
    python benchmarks/rl_doorkey.py --speed                  # env steps/s and updates/s only
    python benchmarks/rl_doorkey.py --seeds 100 --agents curl --steps 30000 --out /tmp/dev
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch

from contrastkit.app.rl import (
    DQNAgent,
    RLConfig,
    make_env,
    probe_encoders,
    summarise,
    train_agent,
    write_rl_report,
)
from contrastkit.encoders.pixel import PixelEncoder
from contrastkit.memory.replay import FrameReplayBuffer, FrameStack, PrioritizedFrameReplayBuffer
from contrastkit.train.precision import autocast, resolve_precision

LABELS = {"curl": "CURL", "no-curl": "no CURL"}
#: the state variables the acceptance line averages (the issue's position and direction;
#: ``carrying`` is printed too, but a random policy rarely holds the key, so it is near chance)
PROBED = ("cell", "direction")


def _parse_sets(items: list[str]) -> dict:
    out = {}
    base = RLConfig()
    for item in items:
        k, _, v = item.partition("=")
        kind = type(getattr(base, k))
        out[k] = (v.lower() in ("1", "true", "yes")) if kind is bool else kind(v)
    return out


def speed(config: RLConfig, updates: int = 300) -> None:
    """Environment steps/s with a random policy, and updates/s of both agents in fp32 and bf16."""
    env = make_env(config)
    g = torch.Generator().manual_seed(0)
    frame = env.reset(0)
    kind = PrioritizedFrameReplayBuffer if config.prioritized else FrameReplayBuffer
    buf = kind(20_000, tuple(frame.shape), stack=config.frame_stack, n_step=config.n_step,
               gamma=config.gamma)  # fmt: skip
    stack = FrameStack(config.frame_stack)
    stack.reset(frame)
    buf.start_episode(frame)
    n = 5000
    t = time.perf_counter()
    for _ in range(n):
        frame, r, term, trunc = env.step(int(torch.randint(env.n_actions, (), generator=g)))
        buf.add(0, r, frame, terminal=term, truncated=trunc)
        stack.push(frame)
        if term or trunc:
            frame = env.reset(int(torch.randint(10**6, (), generator=g)))
            stack.reset(frame)
            buf.start_episode(frame)
    env_rate = n / (time.perf_counter() - t)
    print(f"environment (random policy, frames stored): {env_rate:.0f} steps/s")
    dev = torch.device(config.device)
    for curl in (False, True):
        for precision in ("fp32", "bf16"):
            if precision == "bf16" and resolve_precision("auto", dev) != "bf16":
                print(
                    f"  bf16 not supported natively here: skipped ({'CURL' if curl else 'no CURL'})"
                )
                continue
            torch.manual_seed(0)
            agent = DQNAgent(dataclasses.replace(config, curl=curl), tuple(frame.shape),
                             env.n_actions).to(dev)  # fmt: skip
            opt = torch.optim.Adam(agent.parameters_to_train(), lr=config.lr)

            def update(agent=agent, opt=opt, precision=precision) -> None:
                batch = buf.sample(config.batch_size, g)
                with autocast(precision, dev):
                    td, cl, _, td_error = agent.td_and_curl(batch, g)
                    loss = td + cl
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if isinstance(buf, PrioritizedFrameReplayBuffer):
                    buf.update_priorities(batch["indices"], td_error.float())
                if agent.curl is not None:
                    agent.curl.on_step_end(0, 0)

            for _ in range(20):
                update()
            t = time.perf_counter()
            for _ in range(updates):
                update()
            rate = updates / (time.perf_counter() - t)
            minutes = config.steps * (1 / env_rate + 1 / (rate * config.update_every)) / 60
            print(f"  {'CURL' if curl else 'no CURL':8s} {precision}: {rate:.1f} updates/s "
                  f"(batch {config.batch_size}); {config.steps} steps with an update every "
                  f"{config.update_every}: ≈ {minutes:.1f} min without evaluation")  # fmt: skip
    env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", default="curl,no-curl")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--speed", action="store_true", help="measure speed only")
    ap.add_argument("--probe-episodes", type=int, default=40)
    ap.add_argument("--out", default="/tmp/rl_doorkey")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = RLConfig(steps=args.steps, **_parse_sets(args.sets))
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, AMX {torch.cpu._is_amx_tile_supported()}; torch {torch.__version__}; "
        f"update precision {resolve_precision(config.precision, torch.device(config.device))}"
    )
    changed = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
               if getattr(config, f.name) != getattr(RLConfig(), f.name)}  # fmt: skip
    print(f"settings: RLConfig defaults, changed: {changed or 'none'}")
    if args.speed:
        speed(config)
        return
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out)
    runs: dict[str, list[dict]] = {}
    for agent in agents:
        for seed in seeds:
            cfg = dataclasses.replace(config, curl=agent == "curl", seed=seed)
            folder = out / agent / f"seed-{seed}"
            done = folder / "result.json"
            if done.exists():
                print(f"{agent} seed {seed}: already finished in {folder} (not rerun)")
                r = json.loads(done.read_text())
                from contrastkit.train.export import load_encoder

                r["encoder"] = load_encoder(folder / "encoder")
            else:
                resume = (folder / "checkpoint.safetensors").exists()

                def show(row, agent=agent, seed=seed):
                    print(f"  {agent} seed {seed} step {row['step']:6d}: return "
                          f"{row['return']:.3f} success {row['success']:.2f}", flush=True)  # fmt: skip

                r = train_agent(cfg, folder, resume=resume, progress=False, on_eval=show)
                r["encoder"] = r.pop("agent").q.encoder
                keep = {k: v for k, v in r.items() if k != "encoder"}
                done.write_text(json.dumps(keep))
                print(f"{agent} seed {seed}: {r['steps']} steps in {r['seconds']:.0f} s "
                      f"({r['steps_per_s']:.0f} env steps/s, {r['updates_per_s']:.0f} updates/s, "
                      f"{r['precision']})", flush=True)  # fmt: skip
            runs.setdefault(LABELS[agent], []).append(r)
    # curves at 50k and the end
    print("\nevaluation (mean ± std over seeds):")
    half = args.steps // 2
    for label, results in runs.items():
        h, e = summarise(results, at=half), summarise(results)
        print(f"  {label:8s} at {half} steps: return {h['return']:.3f} ± {h['return_std']:.3f}, "
              f"success {h['success']:.2f} | at {args.steps}: return {e['return']:.3f} ± "
              f"{e['return_std']:.3f}, success {e['success']:.2f} ± {e['success_std']:.2f}")  # fmt: skip
    # the probe, per seed: CURL, no CURL, random
    probe_rows: dict[str, list[dict]] = {}
    for i, seed in enumerate(seeds):
        encoders = {label: results[i]["encoder"] for label, results in runs.items()}
        torch.manual_seed(10_000 + seed)
        encoders["random encoder"] = PixelEncoder(
            3 * config.frame_stack, config.crop_size, config.feature_dim, config.filters,
            config.conv_layers,
        )  # fmt: skip
        p = probe_encoders(encoders, config, episodes=args.probe_episodes, seed=seed)
        for name, per in p.items():
            probe_rows.setdefault(name, []).append(per)
    states = sorted(next(iter(probe_rows.values()))[0])
    probe_mean: dict[str, dict[str, dict[str, float]]] = {}
    print("\nstate decoding (linear probes on frozen encoders, accuracy, mean over seeds):")
    for name, rows in probe_rows.items():
        probe_mean[name] = {
            s: {
                "accuracy": sum(r[s]["accuracy"] for r in rows) / len(rows),
                "chance": sum(r[s]["chance"] for r in rows) / len(rows),
            }
            for s in states
        }
        accs = "  ".join(f"{s} {probe_mean[name][s]['accuracy']:.4f}" for s in states)
        mean = sum(probe_mean[name][s]["accuracy"] for s in PROBED) / len(PROBED)
        probe_mean[name]["mean"] = {"accuracy": mean, "chance": float("nan")}
        print(f"  {name:15s} {accs}  mean of cell and direction {mean:.4f}")
    chance = "  ".join(f"{s} {probe_mean[next(iter(probe_mean))][s]['chance']:.4f}" for s in states)
    print(f"  {'majority class':15s} {chance}")
    report = write_rl_report(
        out / "report.html",
        {label: [{**r, "agent": None} for r in results] for label, results in runs.items()},
        probe={k: {s: v for s, v in per.items() if s != "mean"} for k, per in probe_mean.items()},
        title="CURL on MiniGrid DoorKey-5x5 (pixels)",
    )
    print(f"report: {report}")
    # acceptance
    lines = []
    if "CURL" in runs:
        e = summarise(runs["CURL"])
        lines.append(("CURL success ≥ 0.9 within 100k steps (mean over seeds)",
                      e["success"] >= 0.9 and args.steps <= 100_000))  # fmt: skip
        worst = max(r["seconds"] for r in runs["CURL"] + runs.get("no CURL", []))
        lines.append((f"a 100k-step run ≤ 20 min (slowest {worst / 60:.1f} min)",
                      worst <= 1200 and args.steps >= 100_000))  # fmt: skip
    if "CURL" in runs and "no CURL" in runs:
        a, b = summarise(runs["CURL"], at=half), summarise(runs["no CURL"], at=half)
        lines.append((f"at {half} steps CURL's mean return above no CURL's "
                      f"({a['return']:.3f} vs {b['return']:.3f})", a["return"] > b["return"]))  # fmt: skip
        m = {k: probe_mean[k]["mean"]["accuracy"] for k in probe_mean}
        lines.append((
            f"probe: CURL's encoder beats no CURL's and a random one ({m['CURL']:.4f} vs "
            f"{m['no CURL']:.4f}, {m['random encoder']:.4f})",
            m["CURL"] > m["no CURL"] and m["CURL"] > m["random encoder"],
        ))  # fmt: skip
    for text, ok in lines:
        print(f"acceptance: {text}: {'PASS' if ok else 'FAIL'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
