"""Pixel reinforcement learning with an optional CURL loss: environments, a DQN agent, the
training loop with scheduled evaluation, exact resume, the state-decoding probe and a report.

The agent is the data-efficient DQN family CURL used on Atari (Laskin et al. 2020, §5;
van Hasselt et al. 2019, "When to use parametric models in reinforcement learning?"): a
Q-network over stacked pixel frames with a dueling head (Wang et al. 2016), double-DQN
targets (van Hasselt et al. 2016), n-step returns, a Huber loss, a target network copied
every ``target_update`` updates and ε-greedy exploration. Frames live once in a
:class:`~contrastkit.memory.replay.FrameReplayBuffer`, or with ``prioritized=True`` in a
:class:`~contrastkit.memory.replay.PrioritizedFrameReplayBuffer` (Rainbow's proportional
prioritized replay, with importance weights on the TD loss). With ``curl=True`` the Q-network's
encoder also minimises CURL's contrastive loss (:class:`~contrastkit.recipes.curl.CURL`) on
the same replay batch: the anchor crops are the Q-learning inputs, the keys come from the
momentum encoder. Without it, everything else (crops included) is the same, so the two runs
differ only by the contrastive loss.

Reproducibility: every random choice (ε-greedy, replay sampling, crops) draws from one
seeded ``torch.Generator``, and episode ``e`` starts from the environment seed
:func:`episode_seed` ``(seed, e)``. A checkpoint (safetensors + JSON) holds the networks,
the optimiser, the generator, the counters and the current episode's actions; resuming
replays those actions from the episode's seed to rebuild the environment exactly where it
was, so a resumed run equals an uninterrupted one. The replay buffer is saved beside it
(``buffer.safetensors``, 480 MB for 100k 40×40 frames) unless ``save_buffer=False``; a run
resumed without it refills the buffer from new steps (documented: it then differs from the
uninterrupted run).

Example:
    >>> from contrastkit.app.rl import RLConfig
    >>> RLConfig(steps=1000).env
    'MiniGrid-DoorKey-5x5-v0'
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit._checks import require_extra
from contrastkit.augment.observations import center_crop, random_crop
from contrastkit.encoders.pixel import PixelEncoder
from contrastkit.evaluate.state_probe import state_decoding_probe
from contrastkit.heads.noisy import NoisyLinear, reset_noise
from contrastkit.memory.replay import FrameReplayBuffer, FrameStack, PrioritizedFrameReplayBuffer
from contrastkit.recipes.curl import CURL, CURLConfig
from contrastkit.train.checkpoint import load_state, save_state
from contrastkit.train.precision import autocast, resolve_precision

__all__ = [
    "DQNAgent",
    "PixelEnv",
    "QNetwork",
    "RLConfig",
    "collect_probe_data",
    "episode_seed",
    "evaluate_agent",
    "make_env",
    "probe_encoders",
    "train_agent",
]

#: environment seeds of evaluation episode i (the same layouts at every evaluation, for every
#: agent and training seed)
EVAL_SEED_BASE = 1_000_000_000
#: environment seeds of the probe's rollouts
PROBE_SEED_BASE = 2_000_000_000


@dataclass
class RLConfig:
    """A pixel RL run. Every field is a CLI option of ``contrastkit rl``.

    Attributes:
        env: a gymnasium environment id; MiniGrid ids are rendered as full RGB frames
            (``tile_size`` pixels a cell), others through ``render_mode="rgb_array"`` resized
            to ``frame_size``.
        steps: environment steps to train for.
        curl: add CURL's contrastive loss to the encoder's updates.
        curl_weight: its weight beside the TD loss.
        curl_momentum: the key encoder's momentum (CURL: 0.95).
        seed: seeds the networks, the generator and the environments' episode seeds.
        tile_size, frame_size: the frame size (MiniGrid: cells × tile_size; others: resized).
        frame_stack: frames per observation.
        crop_size: side of the random crops (training) and the centre crop (acting).
        augment: random crops for the Q-learning inputs (CURL's anchors); False: centre crops.
        feature_dim, filters, conv_layers: the :class:`~contrastkit.encoders.pixel.PixelEncoder`.
        hidden: width of the dueling head's hidden layers.
        dueling, double: dueling head; double-DQN targets.
        n_step, gamma: n-step returns and discount.
        noisy, noisy_sigma: noisy nets (Fortunato et al. 2018) in the Q head, drawn anew for
            every update and used for acting between updates, as in (data-efficient) Rainbow;
            evaluation uses the mean weights. ``noisy_sigma`` is σ₀ (data-efficient Rainbow:
            0.1). Noisy nets explore by themselves: set ``eps_start``/``eps_end`` to 0 for
            Rainbow's setting, or keep ε-greedy beside them.
        prioritized: prioritized replay (Schaul et al. 2016, as data-efficient Rainbow):
            transitions drawn in proportion to ``|TD error|^priority_alpha``, their loss
            weighted by importance weights whose exponent rises from ``priority_beta`` to 1
            over ``steps`` (:class:`~contrastkit.memory.replay.PrioritizedFrameReplayBuffer`).
        priority_alpha, priority_beta: those exponents (data-efficient Rainbow: 0.5, 0.4).

    The defaults for ``n_step``, ``lr``, ``target_update``, ``eps_decay_steps`` and
    ``update_every`` were chosen on DoorKey-5x5 with a development seed (100) only, and
    ``prioritized`` on development seeds 103–106 (mean success at 100k steps 0.84, against
    0.49 with uniform replay), then ``eps_decay_steps`` 50k with prioritized replay on the
    same seeds (1.00 against 0.84 with 20k); the record is in ``benchmarks/RESULTS.md``.
        batch_size, lr, max_grad_norm: the update (Adam).
        buffer_size: replay capacity in frames.
        learning_starts: steps of random actions before the first update.
        update_every: environment steps per update (1: one update a step).
        target_update: updates between copies of the target network.
        eps_start, eps_end, eps_decay_steps: linear ε schedule over environment steps.
        eval_every, eval_episodes, eval_epsilon: evaluation schedule (the same
            ``eval_episodes`` environment seeds every time).
        checkpoint_every: steps between checkpoints (0: only at the end).
        save_buffer: save the replay buffer with checkpoints (exact resume).
        precision: ``auto`` (bf16 autocast for the update where the CPU/GPU has native bf16),
            ``bf16`` or ``fp32``.
        device: ``cpu`` or ``cuda``.
    """

    env: str = "MiniGrid-DoorKey-5x5-v0"
    steps: int = 100_000
    curl: bool = True
    curl_weight: float = 1.0
    curl_momentum: float = 0.95
    seed: int = 0
    tile_size: int = 8
    frame_size: int = 64
    frame_stack: int = 3
    crop_size: int = 36
    augment: bool = True
    feature_dim: int = 50
    filters: int = 32
    conv_layers: int = 4
    hidden: int = 256
    dueling: bool = True
    double: bool = True
    n_step: int = 10
    gamma: float = 0.99
    noisy: bool = False
    noisy_sigma: float = 0.1
    prioritized: bool = True
    priority_alpha: float = 0.5
    priority_beta: float = 0.4
    batch_size: int = 32
    lr: float = 5e-4
    max_grad_norm: float = 10.0
    buffer_size: int = 100_000
    learning_starts: int = 1600
    update_every: int = 4
    target_update: int = 500
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_steps: int = 50_000
    eval_every: int = 10_000
    eval_episodes: int = 20
    eval_epsilon: float = 0.0
    checkpoint_every: int = 10_000
    save_buffer: bool = True
    precision: str = "auto"
    device: str = "cpu"

    def validate(self) -> None:
        """Raise a ValueError naming the first bad option."""
        positive = (
            "steps frame_stack crop_size feature_dim filters conv_layers hidden n_step "
            "batch_size buffer_size update_every target_update eval_episodes tile_size frame_size"
        )
        for name in positive.split():
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}.")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}.")
        for name in ("eps_start", "eps_end", "eval_epsilon"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if self.noisy_sigma < 0:
            raise ValueError(f"noisy_sigma must be ≥ 0, got {self.noisy_sigma}.")
        if self.priority_alpha < 0 or not 0.0 <= self.priority_beta <= 1.0:
            raise ValueError(
                f"priority_alpha must be ≥ 0 and priority_beta in [0, 1], got "
                f"{self.priority_alpha} and {self.priority_beta}."
            )
        if self.learning_starts < self.batch_size:
            raise ValueError(
                f"learning_starts ({self.learning_starts}) must be ≥ batch_size "
                f"({self.batch_size}): the first update needs that many transitions."
            )
        if self.buffer_size < self.learning_starts:
            raise ValueError(
                f"buffer_size ({self.buffer_size}) must hold learning_starts "
                f"({self.learning_starts}) frames."
            )
        resolve_precision(self.precision, torch.device("cpu"))
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}.")


#: the settings of runs checkpointed before these RLConfig fields existed (uniform replay)
_BEFORE_FIELDS: dict[str, Any] = {"prioritized": False}


def episode_seed(seed: int, episode: int) -> int:
    """The environment seed of training episode ``episode`` of a run seeded ``seed``."""
    return int((int(seed) * 1_000_003 + int(episode)) % (2**31 - 1))


# ---- environments --------------------------------------------------------------------------
class PixelEnv:
    """A gymnasium environment seen as uint8 frames (C, H, W).

    MiniGrid environments are rendered fully observable in RGB (``RGBImgObsWrapper``,
    ``tile_size`` pixels a cell, e.g. 40×40 for DoorKey-5x5); other environments are
    rendered with ``render_mode="rgb_array"`` and resized to ``frame_size``² (area
    interpolation). ``state()`` gives the agent's cell and heading where the environment
    exposes them (MiniGrid), for the state-decoding probe.
    """

    def __init__(self, name: str, tile_size: int = 8, frame_size: int = 64) -> None:
        gym = require_extra("gymnasium", "rl", "pixel reinforcement learning")
        self.name = name
        self.minigrid = name.startswith("MiniGrid") or name.startswith("BabyAI")
        if self.minigrid:
            require_extra("minigrid", "rl", f"the {name} environment")
            from minigrid.wrappers import ImgObsWrapper, RGBImgObsWrapper

            self.env = ImgObsWrapper(RGBImgObsWrapper(gym.make(name), tile_size=tile_size))
        else:
            try:
                self.env = gym.make(name, render_mode="rgb_array")
            except gym.error.Error as err:
                raise ValueError(f"cannot make environment {name!r}: {err}") from None
        self.frame_size = int(frame_size)
        space = self.env.action_space
        if not hasattr(space, "n"):
            raise ValueError(
                f"{name} has a {type(space).__name__} action space; the DQN agent needs "
                f"discrete actions."
            )
        self.n_actions = int(space.n)

    def _frame(self, obs: Any) -> Tensor:
        if self.minigrid:
            img = obs
        else:
            img = self.env.render()
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        if not self.minigrid and tuple(x.shape[-2:]) != (self.frame_size, self.frame_size):
            x = F.interpolate(
                x[None].float(), size=(self.frame_size, self.frame_size), mode="area"
            )[0]
            x = x.round().clamp(0, 255).to(torch.uint8)
        return x.contiguous()

    def reset(self, seed: int) -> Tensor:
        obs, _ = self.env.reset(seed=int(seed))
        return self._frame(obs)

    def step(self, action: int) -> tuple[Tensor, float, bool, bool]:
        obs, reward, terminated, truncated, _ = self.env.step(int(action))
        return self._frame(obs), float(reward), bool(terminated), bool(truncated)

    def state(self) -> dict[str, int]:
        """The agent's ``x``, ``y``, ``direction`` and whether it ``carrying`` something."""
        u = self.env.unwrapped
        if not hasattr(u, "agent_pos"):
            raise ValueError(f"{self.name} does not expose the agent's position and heading.")
        x, y = (int(v) for v in u.agent_pos)
        return {
            "x": x,
            "y": y,
            "direction": int(u.agent_dir),
            "carrying": int(u.carrying is not None),
            "width": int(u.width),
        }

    def close(self) -> None:
        self.env.close()


def make_env(config: RLConfig) -> PixelEnv:
    """The :class:`PixelEnv` of ``config``."""
    return PixelEnv(config.env, config.tile_size, config.frame_size)


# ---- agent ---------------------------------------------------------------------------------
class QNetwork(nn.Module):
    """Pixel encoder + (dueling) Q head: (B, k·C, S, S) uint8 → (B, actions).

    The dueling head computes ``Q = V + A − mean(A)`` from two MLPs over the encoder's
    features (Wang et al. 2016, eq. 9). With ``noisy_sigma`` the head's linear layers are
    :class:`~contrastkit.heads.noisy.NoisyLinear` (Rainbow's noisy nets; the noise is drawn
    by :func:`~contrastkit.heads.noisy.reset_noise` and used in training mode only).
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_actions: int,
        hidden: int = 256,
        dueling: bool = True,
        noisy_sigma: float | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        d = int(encoder.out_dim)
        self.dueling = dueling

        def linear(i: int, o: int) -> nn.Module:
            return nn.Linear(i, o) if noisy_sigma is None else NoisyLinear(i, o, noisy_sigma)

        def mlp(out: int) -> nn.Sequential:
            return nn.Sequential(linear(d, hidden), nn.ReLU(), linear(hidden, out))

        self.advantage = mlp(n_actions)
        self.value = mlp(1) if dueling else None

    def head(self, z: Tensor) -> Tensor:
        a = self.advantage(z)
        if self.value is None:
            return a
        return self.value(z) + a - a.mean(dim=1, keepdim=True)

    def forward(self, obs: Tensor) -> Tensor:
        return self.head(self.encoder(obs))


class DQNAgent(nn.Module):
    """The Q-network, its target copy and (with ``curl``) the CURL recipe on the same encoder.

    Args:
        config: the run's :class:`RLConfig`.
        frame_shape: (C, H, W) of one frame.
        n_actions: discrete actions.
    """

    def __init__(self, config: RLConfig, frame_shape: tuple[int, int, int], n_actions: int):
        super().__init__()
        self.config = c = config
        channels = frame_shape[0] * c.frame_stack
        if c.crop_size > min(frame_shape[1:]):
            raise ValueError(
                f"crop_size {c.crop_size} is larger than the {frame_shape[1]}×{frame_shape[2]} "
                f"frames; use --crop-size ≤ {min(frame_shape[1:])}."
            )
        encoder = PixelEncoder(channels, c.crop_size, c.feature_dim, c.filters, c.conv_layers)
        self.q = QNetwork(
            encoder, n_actions, c.hidden, c.dueling, c.noisy_sigma if c.noisy else None
        )
        self.target = copy.deepcopy(self.q).requires_grad_(False)
        self.curl = (
            CURL(encoder, CURLConfig(crop_size=c.crop_size, momentum=c.curl_momentum))
            if c.curl
            else None
        )
        self.n_actions = n_actions

    def parameters_to_train(self) -> list[nn.Parameter]:
        params = list(self.q.parameters())
        if self.curl is not None:
            params.append(self.curl.W)
        return params

    @torch.no_grad()
    def greedy(self, stacks: Tensor) -> Tensor:
        """Greedy actions (B,) for observations (B, k·C, H, W) (centre crops)."""
        dev = next(self.q.parameters()).device
        return self.q(center_crop(stacks.to(dev), self.config.crop_size)).argmax(1).cpu()

    def td_and_curl(
        self, batch: dict[str, Tensor], generator: torch.Generator
    ) -> tuple[Tensor, Tensor, dict[str, float], Tensor]:
        """The Huber TD loss and CURL's loss (0 without CURL) of one replay batch, a few
        statistics and the TD errors (B,) (for priorities). With ``batch["weights"]`` (B,)
        (prioritized replay's importance weights) the TD loss is their weighted mean."""
        c, dev = self.config, next(self.q.parameters()).device
        # uint8 stacks cross to the device before the crops (CURL's key encoder runs there)
        obs, nxt = batch["obs"].to(dev), batch["next_obs"].to(dev)
        curl_loss = torch.zeros((), device=dev)
        prepared: dict[str, Any] | None = None
        if self.curl is not None:
            self.curl.generator = generator
            prepared = self.curl.prepare({"obs": obs, "indices": batch["indices"]})
            prepared = {k: v.to(dev) if isinstance(v, Tensor) else v for k, v in prepared.items()}
        if c.augment:
            anchors = prepared["inputs"] if prepared else random_crop(obs, c.crop_size, generator)
            nxt_in = random_crop(nxt, c.crop_size, generator)
        else:
            anchors, nxt_in = center_crop(obs, c.crop_size), center_crop(nxt, c.crop_size)
        anchors, nxt_in = anchors.to(dev), nxt_in.to(dev)
        z = self.q.encoder(anchors)
        q_taken = self.q.head(z).float().gather(1, batch["actions"].to(dev)[:, None])[:, 0]
        with torch.no_grad():
            q_next_target = self.target(nxt_in).float()
            if c.double:
                a_star = self.q(nxt_in).argmax(1, keepdim=True)
            else:
                a_star = q_next_target.argmax(1, keepdim=True)
            y = (
                batch["returns"].to(dev)
                + batch["discounts"].to(dev) * q_next_target.gather(1, a_star)[:, 0]
            )
        per = F.smooth_l1_loss(q_taken, y, reduction="none")
        weights = batch.get("weights")
        td = per.mean() if weights is None else (weights.to(dev) * per).mean()
        if prepared is not None:
            z_curl = z if c.augment else self.q.encoder(prepared["inputs"])
            curl_loss = self.curl.loss({"views": z_curl}, prepared).loss
        return td, curl_loss, {"q": float(q_taken.detach().mean())}, (y - q_taken).detach()


# ---- training ------------------------------------------------------------------------------
def epsilon_at(step: int, c: RLConfig) -> float:
    """Linear ε from ``eps_start`` to ``eps_end`` over ``eps_decay_steps`` steps."""
    t = min(1.0, step / max(1, c.eps_decay_steps))
    return c.eps_start + t * (c.eps_end - c.eps_start)


def beta_at(step: int, c: RLConfig) -> float:
    """Prioritized replay's importance exponent: linear from ``priority_beta`` to 1 over
    ``steps``."""
    t = min(1.0, step / max(1, c.steps))
    return c.priority_beta + t * (1.0 - c.priority_beta)


def evaluate_agent(agent: DQNAgent, config: RLConfig, episodes: int | None = None) -> dict:
    """Run ``episodes`` evaluation episodes in lockstep (one batched forward a step) from the
    fixed seeds ``EVAL_SEED_BASE + i``, acting greedily (ε = ``eval_epsilon``).

    Returns:
        ``{"return": mean return, "success": share of episodes ending with a positive reward
        (MiniGrid: the goal reached), "length": mean length, "returns": [...]}``.
    """
    n = int(episodes or config.eval_episodes)
    envs = [make_env(config) for _ in range(n)]
    g = torch.Generator().manual_seed(EVAL_SEED_BASE + config.seed)
    stacks = [FrameStack(config.frame_stack) for _ in range(n)]
    obs = [s.reset(e.reset(EVAL_SEED_BASE + i)) for i, (s, e) in enumerate(zip(stacks, envs))]
    ret, length = [0.0] * n, [0] * n
    success, done = [False] * n, [False] * n
    was_training = agent.training
    agent.eval()
    while not all(done):
        live = [i for i in range(n) if not done[i]]
        acts = agent.greedy(torch.stack([obs[i] for i in live]))
        for i, a in zip(live, acts.tolist(), strict=True):
            if config.eval_epsilon > 0 and float(torch.rand((), generator=g)) < config.eval_epsilon:
                a = int(torch.randint(agent.n_actions, (), generator=g))
            frame, r, term, trunc = envs[i].step(a)
            ret[i] += r
            length[i] += 1
            obs[i] = stacks[i].push(frame)
            if term or trunc:
                done[i], success[i] = True, bool(term and r > 0)
    for e in envs:
        e.close()
    agent.train(was_training)
    return {
        "return": float(np.mean(ret)),
        "success": float(np.mean(success)),
        "length": float(np.mean(length)),
        "returns": [float(r) for r in ret],
    }


def _paths(out: str | os.PathLike) -> dict[str, Path]:
    o = Path(out)
    return {
        "checkpoint": o / "checkpoint.safetensors",
        "buffer": o / "buffer.safetensors",
        "history": o / "history.json",
        "encoder": o / "encoder",
    }


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def train_agent(
    config: RLConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    progress: bool = True,
    on_eval: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Train a pixel DQN agent (with CURL when ``config.curl``), evaluating on a schedule.

    Args:
        config: :class:`RLConfig`.
        out: the run folder: ``checkpoint.safetensors`` (+ ``buffer.safetensors``),
            ``history.json`` (evaluations and training episodes), ``encoder/`` (the pixel
            encoder, safetensors + JSON, at the end).
        resume: continue from ``out``'s checkpoint (its settings must equal ``config``'s,
            except ``steps``, which may be raised).
        stop_at: stop after this many steps (writing a checkpoint), as an interruption would.
        progress: a tqdm bar with the latest evaluation's return and success rate.
        on_eval: called with each evaluation row.

    Returns:
        ``{"config", "evals": [{"step", "return", "success", "length"}], "episodes":
        [{"step", "return", "length"}], "updates", "seconds", "steps_per_s", "updates_per_s",
        "precision"}``.
    """
    config.validate()
    c = config
    paths = _paths(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    device = torch.device(c.device)
    precision = resolve_precision(c.precision, device)
    torch.manual_seed(c.seed)
    env = make_env(c)
    first = env.reset(episode_seed(c.seed, 0))
    agent = DQNAgent(c, tuple(first.shape), env.n_actions).to(device)
    opt = torch.optim.Adam(agent.parameters_to_train(), lr=c.lr)
    gen = torch.Generator().manual_seed(c.seed)
    if c.prioritized:
        buffer: FrameReplayBuffer = PrioritizedFrameReplayBuffer(
            c.buffer_size,
            tuple(first.shape),
            stack=c.frame_stack,
            n_step=c.n_step,
            gamma=c.gamma,
            alpha=c.priority_alpha,
        )
    else:
        buffer = FrameReplayBuffer(
            c.buffer_size, tuple(first.shape), stack=c.frame_stack, n_step=c.n_step, gamma=c.gamma
        )
    stack = FrameStack(c.frame_stack)
    state = {"step": 0, "episode": 0, "updates": 0, "actions": [], "ep_return": 0.0}
    history: dict[str, Any] = {"evals": [], "episodes": [], "train": []}
    seconds_before = 0.0
    if resume:
        if not paths["checkpoint"].exists():
            raise FileNotFoundError(
                f"no checkpoint at {paths['checkpoint']} to resume from; start without --resume."
            )
        ck = load_state(paths["checkpoint"])
        # a field added since the checkpoint was written counts as what such runs did
        saved = {**dataclasses.asdict(RLConfig()), **_BEFORE_FIELDS, **dict(ck["config"])}
        mine = dataclasses.asdict(c)
        diff = [k for k in mine if k != "steps" and saved.get(k) != mine[k]]
        if diff:
            raise ValueError(
                f"the checkpoint in {out} was trained with other settings ({', '.join(diff)}); "
                f"resume with the same options (only --steps may change)."
            )
        agent.load_state_dict(ck["agent"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        state = dict(ck["state"])
        history = json.loads(paths["history"].read_text())
        seconds_before = float(ck.get("seconds", 0.0))
        if paths["buffer"].exists():
            buffer.load_state_dict(load_state(paths["buffer"]))
            kept_buffer = True
        else:
            kept_buffer = False
        # rebuild the environment where it was: the episode's seed, then its actions so far
        frame = env.reset(episode_seed(c.seed, state["episode"]))
        obs = stack.reset(frame)
        for a in state["actions"]:
            frame, _, _, _ = env.step(a)
            obs = stack.push(frame)
        if not kept_buffer:  # a new buffer starts at the current frame
            buffer.start_episode(frame)
    else:
        obs = stack.reset(first)
        buffer.start_episode(first)

    def save() -> None:
        ck = {
            "config": dataclasses.asdict(c),
            "agent": agent.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "state": state,
            "seconds": seconds_before + (time.perf_counter() - t0),
        }
        if c.save_buffer:
            save_state(paths["buffer"], buffer.state_dict())
        save_state(paths["checkpoint"], ck)
        _write_json(paths["history"], history)

    def evaluate() -> None:
        row = {"step": state["step"], **evaluate_agent(agent, c)}
        history["evals"].append(row)
        if on_eval is not None:
            on_eval(row)
        if bar is not None:
            bar.set_postfix(ret=f"{row['return']:.3f}", success=f"{row['success']:.2f}")

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=c.steps, initial=state["step"], desc=f"rl {c.env}", unit="step")
    t0 = time.perf_counter()
    steps_start, updates_start = state["step"], state["updates"]
    end = min(c.steps, stop_at) if stop_at is not None else c.steps
    if state["step"] == 0 and not history["evals"]:
        evaluate()
    loss_acc: list[tuple[float, float]] = []
    while state["step"] < end:
        step = state["step"]
        if step < c.learning_starts or float(torch.rand((), generator=gen)) < epsilon_at(step, c):
            action = int(torch.randint(env.n_actions, (), generator=gen))
        else:
            action = int(agent.greedy(obs[None])[0])
        frame, reward, term, trunc = env.step(action)
        buffer.add(action, reward, frame, terminal=term, truncated=trunc)
        obs = stack.push(frame)
        state["actions"].append(action)
        state["ep_return"] += reward
        state["step"] = step = step + 1
        if term or trunc:
            history["episodes"].append(
                {"step": step, "return": state["ep_return"], "length": len(state["actions"])}
            )
            state["episode"] += 1
            state["actions"], state["ep_return"] = [], 0.0
            frame = env.reset(episode_seed(c.seed, state["episode"]))
            obs = stack.reset(frame)
            buffer.start_episode(frame)
        if step >= c.learning_starts and step % c.update_every == 0:
            if c.noisy:  # new noise for this update and for acting until the next one
                reset_noise(agent.q, gen)
                reset_noise(agent.target, gen)
            if isinstance(buffer, PrioritizedFrameReplayBuffer):
                batch = buffer.sample(c.batch_size, gen, beta=beta_at(step, c))
            else:
                batch = buffer.sample(c.batch_size, gen)
            with autocast(precision, device):
                td, cl, _, td_error = agent.td_and_curl(batch, gen)
                loss = td + c.curl_weight * cl if agent.curl is not None else td
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if c.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(agent.parameters_to_train(), c.max_grad_norm)
            opt.step()
            if isinstance(buffer, PrioritizedFrameReplayBuffer):
                buffer.update_priorities(batch["indices"], td_error.float())
            if agent.curl is not None:
                agent.curl.on_step_end(state["updates"], 0)
            state["updates"] += 1
            if state["updates"] % c.target_update == 0:
                agent.target.load_state_dict(agent.q.state_dict())
            loss_acc.append((float(td.detach()), float(cl.detach())))
        if bar is not None:
            bar.update(1)
        if step % 1000 == 0 and loss_acc:
            td_m, cl_m = (float(np.mean(v)) for v in zip(*loss_acc, strict=True))
            history["train"].append({"step": step, "td": td_m, "curl": cl_m})
            loss_acc = []
        if c.eval_every and step % c.eval_every == 0:
            evaluate()
        if c.checkpoint_every and step % c.checkpoint_every == 0 and step < end:
            save()
    if bar is not None:
        bar.close()
    if state["step"] >= c.steps and (
        not history["evals"] or history["evals"][-1]["step"] != c.steps
    ):
        evaluate()
    seconds = time.perf_counter() - t0
    save()
    if state["step"] >= c.steps:
        save_pixel_encoder(agent, paths["encoder"])
    env.close()
    done = state["step"] - steps_start
    return {
        "config": dataclasses.asdict(c),
        "evals": history["evals"],
        "episodes": history["episodes"],
        "train": history["train"],
        "updates": state["updates"],
        "steps": state["step"],
        "seconds": seconds,
        "steps_per_s": done / seconds if seconds > 0 else math.nan,
        "updates_per_s": (state["updates"] - updates_start) / seconds if seconds > 0 else math.nan,
        "precision": precision,
        "agent": agent,
    }


def save_pixel_encoder(agent: DQNAgent, folder: str | os.PathLike) -> Path:
    """The agent's pixel encoder as an exported encoder folder (safetensors + JSON)."""
    from contrastkit.train.export import export_encoder

    return export_encoder(agent.q.encoder, folder, name="pixel")


# ---- state-decoding probe ------------------------------------------------------------------
def collect_probe_data(
    config: RLConfig, episodes: int = 40, max_steps: int = 60, seed: int = 0
) -> dict[str, Any]:
    """Observations and true states from uniformly random rollouts (seeds
    ``PROBE_SEED_BASE + seed·10⁴ + e``): ``obs`` (N, k·C, H, W) uint8, ``episode`` (N,), and
    states ``cell`` (y·width + x), ``direction`` and ``carrying`` (N,)."""
    env = make_env(config)
    g = torch.Generator().manual_seed(PROBE_SEED_BASE + seed)
    obs, eps, cells, dirs, carry = [], [], [], [], []
    for e in range(episodes):
        stack = FrameStack(config.frame_stack)
        o = stack.reset(env.reset(PROBE_SEED_BASE + seed * 10_000 + e))
        for _ in range(max_steps):
            s = env.state()
            obs.append(o)
            eps.append(e)
            cells.append(s["y"] * s["width"] + s["x"])
            dirs.append(s["direction"])
            carry.append(s["carrying"])
            frame, _, term, trunc = env.step(int(torch.randint(env.n_actions, (), generator=g)))
            o = stack.push(frame)
            if term or trunc:
                break
    env.close()
    return {
        "obs": torch.stack(obs),
        "episode": torch.tensor(eps),
        "states": {
            "cell": torch.tensor(cells),
            "direction": torch.tensor(dirs),
            "carrying": torch.tensor(carry),
        },
    }


@torch.no_grad()
def _features(encoder: nn.Module, obs: Tensor, crop: int, batch: int = 512) -> Tensor:
    encoder.eval()
    dev = next(encoder.parameters()).device
    out = [encoder(center_crop(obs[i : i + batch], crop).to(dev)).float().cpu()
           for i in range(0, obs.shape[0], batch)]  # fmt: skip
    return torch.cat(out)


def probe_encoders(
    encoders: dict[str, nn.Module],
    config: RLConfig,
    episodes: int = 40,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """The state-decoding probe of each encoder (frozen): random-policy rollouts, the first
    ¾ of the episodes train the linear probes, the last ¼ test them.

    Returns:
        encoder name → state name → ``{"accuracy", "chance", "classes", "weight_decay"}``.
    """
    data = collect_probe_data(config, episodes=episodes, seed=seed)
    train = data["episode"] < int(episodes * 3 / 4)
    out = {}
    for name, enc in encoders.items():
        f = _features(enc, data["obs"], config.crop_size)
        out[name] = state_decoding_probe(
            f[train],
            {k: v[train] for k, v in data["states"].items()},
            f[~train],
            {k: v[~train] for k, v in data["states"].items()},
            seed=seed,
        )
    return out


# ---- several seeds, curves and the report --------------------------------------------------
def plot_learning_curves(runs: dict[str, list[dict[str, Any]]]) -> bytes:
    """Evaluation return and success rate against environment steps: one thin line per seed
    and the mean over seeds in bold, one colour per agent. ``runs``: agent label → list of
    results of :func:`train_agent` (or dicts with ``"seed"`` and ``"evals"``). PNG bytes."""
    from contrastkit.evaluate.report import _plt, _png

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, results), colour in zip(runs.items(), colours, strict=False):
        for key, ax in zip(("return", "success"), axes, strict=True):
            curves = []
            for r in results:
                steps = [e["step"] for e in r["evals"]]
                vals = [e[key] for e in r["evals"]]
                ax.plot(steps, vals, color=colour, alpha=0.35, lw=1)
                curves.append(dict(zip(steps, vals, strict=True)))
            common = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
            if common:
                mean = [float(np.mean([c[s] for c in curves])) for s in common]
                ax.plot(
                    common, mean, color=colour, lw=2.5, label=f"{label} (mean of {len(curves)})"
                )
    for ax, title in zip(axes, ("evaluation return", "evaluation success rate"), strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    axes[1].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8, loc="upper left")
    return _png(fig)


def summarise(results: list[dict[str, Any]], at: int | None = None) -> dict[str, float]:
    """Mean over seeds of the last evaluation (or the one at step ``at``)."""
    rows = []
    for r in results:
        evals = r["evals"] if at is None else [e for e in r["evals"] if e["step"] == at]
        if not evals:
            raise ValueError(f"a run has no evaluation at step {at}; evaluate on that step.")
        rows.append(evals[-1])
    return {
        "return": float(np.mean([e["return"] for e in rows])),
        "return_std": float(np.std([e["return"] for e in rows])),
        "success": float(np.mean([e["success"] for e in rows])),
        "success_std": float(np.std([e["success"] for e in rows])),
    }


def write_rl_report(
    path: str | os.PathLike,
    runs: dict[str, list[dict[str, Any]]],
    probe: dict[str, dict[str, dict[str, float]]] | None = None,
    title: str = "contrastkit rl",
) -> Path:
    """The HTML report of one or more agents over seeds: the learning curves of every seed,
    the last evaluation per seed, speed, and the state-decoding probe when given."""
    from contrastkit.evaluate.report import write_report

    metrics: dict[str, Any] = {}
    rows = []
    for label, results in runs.items():
        s = summarise(results)
        seeds = f"{len(results)} seed{'s' if len(results) != 1 else ''}"
        metrics[f"{label}: final evaluation return (mean over {seeds})"] = s["return"]
        metrics[f"{label}: final evaluation success rate"] = s["success"]
        for r in results:
            last = r["evals"][-1]
            rows.append([
                label, r["config"]["seed"], last["step"], last["return"], last["success"],
                f"{r.get('steps_per_s', float('nan')):.0f}",
                f"{r.get('updates_per_s', float('nan')):.0f}",
            ])  # fmt: skip
    tables = [
        (
            "Last evaluation of each seed",
            ["agent", "seed", "step", "return", "success", "env steps/s", "updates/s"],
            rows,
        )
    ]
    if probe:
        states = sorted({s for per in probe.values() for s in per})
        header = ["encoder", *[f"{s} accuracy" for s in states]]
        prow = [[name, *[per[s]["accuracy"] for s in states]] for name, per in probe.items()]
        first = next(iter(probe.values()))
        prow.append(["majority class (chance)", *[first[s]["chance"] for s in states]])
        tables.append(("State decoding: linear probes on frozen encoders", header, prow))
    return write_report(
        path,
        title=title,
        metrics=metrics,
        figures=[("Learning curves (thin: each seed; bold: mean)", plot_learning_curves(runs))],
        tables=tables,
        maps=(),
    )


def run_seeds(
    config: RLConfig,
    out: str | os.PathLike,
    seeds: list[int],
    *,
    resume: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """:func:`train_agent` once per seed into ``out/seed-<s>``, then ``out/report.html``
    (curves of each seed) and ``out/results.json``."""
    results = []
    for s in seeds:
        cfg = dataclasses.replace(config, seed=int(s))
        folder = Path(out) / f"seed-{s}"
        again = resume and (folder / "checkpoint.safetensors").exists()
        results.append(train_agent(cfg, folder, resume=again, progress=progress))
    label = "CURL" if config.curl else "no CURL"
    write_rl_report(
        Path(out) / "report.html", {label: results}, title=f"contrastkit rl: {config.env}"
    )
    keep = [{k: v for k, v in r.items() if k != "agent"} for r in results]
    _write_json(Path(out) / "results.json", {"agent": label, "runs": keep, **summarise(results)})
    return results
