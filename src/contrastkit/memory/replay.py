"""Replay memory for pixel agents: every frame is stored once, frame stacks are built by index.

An agent that sees stacked frames (the last ``k`` frames of its episode) would store ``k``
copies of each frame if it kept whole observations, and twice that with next observations.
:class:`FrameReplayBuffer` keeps one uint8 copy of each frame in a ring and rebuilds a
stack from frame indices when it samples, repeating an episode's first frame where the stack
would reach into the previous episode (the same rule :class:`FrameStack` follows while
acting, so the agent learns on exactly the stacks it acted on). Sampled transitions carry
n-step returns (Sutton & Barto §7.1; Rainbow, Hessel et al. 2018): the discounted sum of up
to ``n`` rewards, the stack ``m ≤ n`` steps later to bootstrap from, and its discount
``γ^m`` (0 after a terminal state; a time-limit truncation still bootstraps).

Indices are absolute (the ``t``-th frame ever written is index ``t``; it lives in slot
``t mod capacity``), so an index names one frame for the buffer's whole life; sampled
transitions return theirs as ``"indices"``, which CURL uses as instance ids.

Example:
    >>> import torch
    >>> from contrastkit.memory.replay import FrameReplayBuffer
    >>> buf = FrameReplayBuffer(100, (1, 2, 2), stack=2, n_step=2, gamma=0.5)
    >>> buf.start_episode(torch.zeros(1, 2, 2, dtype=torch.uint8))
    >>> for t in range(1, 4):
    ...     buf.add(action=t, reward=1.0, next_frame=torch.full((1, 2, 2), t, dtype=torch.uint8),
    ...             terminal=t == 3)
    >>> b = buf.sample(32, generator=torch.Generator().manual_seed(0))
    >>> b["obs"].shape, sorted(set(b["returns"].tolist())), buf.frames_stored
    (torch.Size([32, 2, 2, 2]), [1.0, 1.5], 4)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["FrameReplayBuffer", "FrameStack", "PrioritizedFrameReplayBuffer"]


class FrameStack:
    """The acting side of frame stacking: the last ``k`` frames of the current episode,
    concatenated along channels; at an episode's start the first frame fills the stack.

    Example:
        >>> import torch
        >>> s = FrameStack(3)
        >>> s.reset(torch.zeros(1, 2, 2)).shape
        torch.Size([3, 2, 2])
        >>> s.push(torch.ones(1, 2, 2))[:, 0, 0].tolist()
        [0.0, 0.0, 1.0]
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"a frame stack needs k ≥ 1 frames, got {k}.")
        self.k = int(k)
        self._frames: list[Tensor] = []

    def reset(self, frame: Tensor) -> Tensor:
        """Start an episode at ``frame`` (C, H, W); returns the stack (k·C, H, W)."""
        self._frames = [frame] * self.k
        return self.stacked()

    def push(self, frame: Tensor) -> Tensor:
        """Append the next frame of the episode; returns the stack (k·C, H, W)."""
        if not self._frames:
            raise RuntimeError("FrameStack.push before reset: call reset(first_frame) first.")
        self._frames = [*self._frames[1:], frame]
        return self.stacked()

    def stacked(self) -> Tensor:
        return torch.cat(self._frames, dim=0)


class FrameReplayBuffer:
    """A ring of uint8 frames with the transitions taken from them.

    Args:
        capacity: frames kept (the oldest are overwritten). Memory: ``capacity × C×H×W``
            bytes (100,000 40×40 RGB frames: 480 MB).
        frame_shape: (C, H, W) of one frame.
        stack: frames per observation (``k``).
        n_step: rewards summed per sampled transition.
        gamma: discount factor.

    Writing: :meth:`start_episode` with the first frame after a reset, then :meth:`add`
    once per environment step with the action taken, the reward, the frame that followed and
    whether the episode ended (``terminal``: no bootstrap; ``truncated``: a time limit, still
    bootstrapped). After an episode ends the next call must be :meth:`start_episode`.
    """

    def __init__(
        self,
        capacity: int,
        frame_shape: Sequence[int],
        *,
        stack: int = 3,
        n_step: int = 3,
        gamma: float = 0.99,
    ) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be ≥ 2 frames, got {capacity}.")
        if stack < 1 or n_step < 1:
            raise ValueError(f"stack and n_step must be ≥ 1, got {stack} and {n_step}.")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}.")
        self.capacity, self.stack, self.n_step, self.gamma = (
            int(capacity),
            int(stack),
            int(n_step),
            float(gamma),
        )
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.frames = torch.zeros((self.capacity, *self.frame_shape), dtype=torch.uint8)
        self.actions = torch.zeros(self.capacity, dtype=torch.long)
        self.rewards = torch.zeros(self.capacity, dtype=torch.float32)
        #: the step taken from this frame ended the episode in a terminal state
        self.terminal = torch.zeros(self.capacity, dtype=torch.bool)
        #: an action was taken from this frame (False for an episode's last frame)
        self.has_action = torch.zeros(self.capacity, dtype=torch.bool)
        #: the last frame of a finished episode (terminal or truncated)
        self.episode_end = torch.zeros(self.capacity, dtype=torch.bool)
        #: absolute index of the first frame of this frame's episode
        self.episode_start = torch.zeros(self.capacity, dtype=torch.long)
        #: frames written so far (the absolute index of the next frame)
        self.total = 0
        self._open = False

    # ---- writing ---------------------------------------------------------------------------
    def _write(self, frame: Tensor, start: int) -> None:
        frame = torch.as_tensor(frame)
        if tuple(frame.shape) != self.frame_shape or frame.dtype != torch.uint8:
            raise ValueError(
                f"a frame must be uint8 of shape {self.frame_shape}, got {frame.dtype} "
                f"{tuple(frame.shape)}; convert (H, W, C) frames with .permute(2, 0, 1)."
            )
        j = self.total % self.capacity
        self.frames[j] = frame
        self.has_action[j] = False
        self.terminal[j] = False
        self.episode_end[j] = False
        self.rewards[j] = 0.0
        self.actions[j] = 0
        self.episode_start[j] = start
        self.total += 1

    def start_episode(self, frame: Tensor) -> None:
        """Store the first frame (C, H, W) uint8 of a new episode."""
        self._write(frame, start=self.total)
        self._open = True

    def add(
        self,
        action: int,
        reward: float,
        next_frame: Tensor,
        terminal: bool = False,
        truncated: bool = False,
    ) -> None:
        """Record the step taken from the last stored frame and store the frame it led to."""
        if not self._open:
            raise RuntimeError(
                "FrameReplayBuffer.add needs an open episode: call start_episode(first_frame) "
                "after every reset."
            )
        j = (self.total - 1) % self.capacity
        self.actions[j] = int(action)
        self.rewards[j] = float(reward)
        self.terminal[j] = bool(terminal)
        self.has_action[j] = True
        self._write(next_frame, start=int(self.episode_start[j]))
        if terminal or truncated:
            self.episode_end[(self.total - 1) % self.capacity] = True
            self._open = False

    # ---- reading ---------------------------------------------------------------------------
    @property
    def frames_stored(self) -> int:
        """Frames held now (≤ capacity)."""
        return min(self.total, self.capacity)

    def __len__(self) -> int:
        return self.frames_stored

    def stacks(self, index: Tensor) -> Tensor:
        """The observations (B, k·C, H, W) uint8 ending at absolute frame indices ``index``:
        frames ``t−k+1 … t``, each clamped to its episode's first frame."""
        index = torch.as_tensor(index, dtype=torch.long)
        start = self.episode_start[index % self.capacity]
        offsets = torch.arange(-self.stack + 1, 1)
        idx = torch.maximum(index[:, None] + offsets, start[:, None])
        out = self.frames[idx % self.capacity]  # (B, k, C, H, W)
        return out.flatten(1, 2)

    def _transitions(self, j: Tensor) -> dict[str, Tensor]:
        """n-step quantities of start indices ``j`` and whether each start is valid."""
        cap, total = self.capacity, self.total
        slot = j % cap
        ep = self.episode_start[slot]
        oldest = max(0, total - cap)
        valid = (j >= oldest) & (j < total) & self.has_action[slot]
        valid &= torch.maximum(j - self.stack + 1, ep) >= oldest
        ret = torch.zeros(j.shape[0], dtype=torch.float32)
        disc = torch.ones(j.shape[0], dtype=torch.float32)
        done = torch.zeros(j.shape[0], dtype=torch.bool)
        alive = valid.clone()
        m = torch.zeros(j.shape[0], dtype=torch.long)
        for o in range(self.n_step):
            idx = j + o
            s = idx % cap
            present = idx < total
            same = present & (self.episode_start[s] == ep)
            act = same & self.has_action[s]
            # a finished episode's last frame (truncation): stop and bootstrap from it
            ended = alive & same & self.episode_end[s]
            alive &= ~ended
            # not written yet: the window is incomplete, the start is not usable yet
            valid &= ~(alive & ~act)
            alive &= act
            ret = torch.where(alive, ret + disc * self.rewards[s], ret)
            disc = torch.where(alive, disc * self.gamma, disc)
            m = torch.where(alive, m + 1, m)
            term = alive & self.terminal[s]
            done |= term
            alive &= ~term
        return {
            "valid": valid,
            "returns": ret,
            "discounts": torch.where(done, torch.zeros_like(disc), disc),
            "next_index": j + m,
            "steps": m,
        }

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None, max_rounds: int = 100
    ) -> dict[str, Any]:
        """``batch_size`` transitions drawn uniformly among the valid ones.

        Returns:
            ``obs`` (B, k·C, H, W) uint8, ``actions`` (B,), ``returns`` (B,) n-step discounted
            reward sums, ``discounts`` (B,) ``γ^m`` (0 after a terminal), ``next_obs`` (B, k·C,
            H, W) uint8, ``steps`` (B,) ``m``, ``indices`` (B,) absolute frame indices.
        """
        lo = max(0, self.total - self.capacity)
        if self.total - lo < 2:
            raise ValueError("the replay buffer holds no transition yet; add steps first.")
        return self._batch(
            self._draw(
                batch_size,
                max_rounds,
                lambda: torch.randint(lo, self.total, (2 * batch_size,), generator=generator),
            )
        )

    def _draw(self, batch_size: int, max_rounds: int, candidates: Callable[[], Tensor]) -> Tensor:
        """``batch_size`` valid start indices from rounds of ``candidates()`` (absolute
        indices; the invalid ones are dropped)."""
        chosen: list[Tensor] = []
        have = 0
        for _ in range(max_rounds):
            cand = candidates()
            ok = cand[self._transitions(cand)["valid"]]
            chosen.append(ok)
            have += ok.numel()
            if have >= batch_size:
                break
        if have < batch_size:
            raise ValueError(
                f"found {have} valid transitions in {max_rounds} rounds of sampling; store more "
                f"steps (at least n_step={self.n_step} of one episode) before sampling."
            )
        return torch.cat(chosen)[:batch_size]

    def _batch(self, j: Tensor) -> dict[str, Any]:
        """The sampled transitions of valid start indices ``j`` (see :meth:`sample`)."""
        t = self._transitions(j)
        return {
            "obs": self.stacks(j),
            "actions": self.actions[j % self.capacity],
            "returns": t["returns"],
            "discounts": t["discounts"],
            "next_obs": self.stacks(t["next_index"]),
            "steps": t["steps"],
            "indices": j,
        }

    # ---- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (tensors and plain values)."""
        return {
            "frames": self.frames,
            "actions": self.actions,
            "rewards": self.rewards,
            "terminal": self.terminal,
            "has_action": self.has_action,
            "episode_end": self.episode_end,
            "episode_start": self.episode_start,
            "total": self.total,
            "open": self._open,
            "config": {
                "capacity": self.capacity,
                "frame_shape": list(self.frame_shape),
                "stack": self.stack,
                "n_step": self.n_step,
                "gamma": self.gamma,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        cfg = state["config"]
        mine = self.state_dict()["config"]
        if {k: cfg[k] for k in mine} != mine:
            raise ValueError(
                f"this replay buffer was saved with {cfg}, but the agent builds {mine}; resume "
                f"with the run's own settings."
            )
        for name in (
            "frames",
            "actions",
            "rewards",
            "terminal",
            "has_action",
            "episode_end",
            "episode_start",
        ):
            getattr(self, name).copy_(state[name])
        self.total = int(state["total"])
        self._open = bool(state["open"])


class PrioritizedFrameReplayBuffer(FrameReplayBuffer):
    """A :class:`FrameReplayBuffer` that samples transitions in proportion to their priority
    (proportional prioritized replay, Schaul et al. 2016; Rainbow's and data-efficient
    Rainbow's replay).

    Transition ``i`` is drawn with probability ``P(i) = p_i^α / Σ_k p_k^α`` (k over the
    transitions that can be drawn now: not the open episode's last steps, whose n-step
    window is incomplete); a new transition
    gets the largest priority seen so far, so it is replayed at least once soon; after an
    update :meth:`update_priorities` sets ``p_i = |δ_i| + ε`` from its TD error. The bias of
    non-uniform sampling is corrected by importance weights ``w_i = (N·P(i))^−β``, divided by
    their largest possible value (that of the lowest priority held), returned as
    ``"weights"``: multiply each transition's loss by its weight (β rises to 1 over
    training).

    Args:
        capacity, frame_shape, stack, n_step, gamma: as :class:`FrameReplayBuffer`.
        alpha: the priority exponent (0: uniform; data-efficient Rainbow: 0.5).
        eps: added to ``|δ|`` so no transition's priority is 0.

    Example:
        >>> import torch
        >>> buf = PrioritizedFrameReplayBuffer(100, (1, 2, 2), stack=1, n_step=1, alpha=1.0)
        >>> buf.start_episode(torch.zeros(1, 2, 2, dtype=torch.uint8))
        >>> for t in range(1, 5):
        ...     buf.add(t, 0.0, torch.full((1, 2, 2), t, dtype=torch.uint8))
        >>> buf.update_priorities(torch.arange(4), torch.tensor([2.999, 0.999, 0.999, 0.999]))
        >>> b = buf.sample(1000, torch.Generator().manual_seed(0), beta=1.0)
        >>> round(float((b["indices"] == 0).float().mean()), 1), round(float(b["weights"].min()), 3)
        (0.5, 0.333)
    """

    def __init__(
        self,
        capacity: int,
        frame_shape: Sequence[int],
        *,
        stack: int = 3,
        n_step: int = 3,
        gamma: float = 0.99,
        alpha: float = 0.5,
        eps: float = 1e-3,
    ) -> None:
        super().__init__(capacity, frame_shape, stack=stack, n_step=n_step, gamma=gamma)
        if alpha < 0 or eps <= 0:
            raise ValueError(f"alpha must be ≥ 0 and eps > 0, got {alpha} and {eps}.")
        self.alpha, self.eps = float(alpha), float(eps)
        #: p_i^α of the transition starting at each slot (0: none recorded there)
        self.priority = torch.zeros(self.capacity, dtype=torch.float64)
        self.max_priority = 1.0

    def _write(self, frame: Tensor, start: int) -> None:
        self.priority[self.total % self.capacity] = 0.0
        super()._write(frame, start)

    def add(
        self,
        action: int,
        reward: float,
        next_frame: Tensor,
        terminal: bool = False,
        truncated: bool = False,
    ) -> None:
        j = (self.total - 1) % self.capacity
        super().add(action, reward, next_frame, terminal=terminal, truncated=truncated)
        self.priority[j] = self.max_priority**self.alpha

    def _absolute(self, slot: Tensor) -> Tensor:
        """The absolute index of the frame now held in each slot."""
        return slot + ((self.total - 1 - slot) // self.capacity) * self.capacity

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        max_rounds: int = 100,
        *,
        beta: float = 0.4,
    ) -> dict[str, Any]:
        """``batch_size`` transitions drawn in proportion to their priority, as
        :meth:`FrameReplayBuffer.sample` plus ``weights`` (B,) float32, the normalised
        importance weights for exponent ``beta``."""
        prio = self._drawable()
        cdf = torch.cumsum(prio, 0)
        total_p = float(cdf[-1])
        if total_p <= 0:
            raise ValueError("the replay buffer holds no transition yet; add steps first.")

        def candidates() -> Tensor:
            u = torch.rand(2 * batch_size, generator=generator, dtype=torch.float64) * total_p
            slot = torch.searchsorted(cdf, u, right=True).clamp_max(self.capacity - 1)
            return self._absolute(slot[prio[slot] > 0])  # u at the very top edge of the cdf

        j = self._draw(batch_size, max_rounds, candidates)
        held = prio > 0
        n = int(held.sum())
        p = prio[j % self.capacity] / total_p
        p_min = float(prio[held].min()) / total_p
        weights = (n * p) ** (-beta) / (n * p_min) ** (-beta)
        return {**self._batch(j), "weights": weights.float()}

    def _drawable(self) -> Tensor:
        """The priorities with the starts that cannot be drawn yet set to 0: the last steps of
        the open episode (their n-step window is incomplete) and the oldest frames (their
        stack reaches overwritten frames). Every other recorded transition is valid."""
        lo = max(0, self.total - self.capacity)
        edge = torch.cat(
            [
                torch.arange(max(lo, self.total - self.n_step - 1), self.total),
                torch.arange(lo, min(self.total, lo + self.stack + 1)),
            ]
        )
        bad = edge[~self._transitions(edge)["valid"]]
        if not bad.numel():
            return self.priority
        prio = self.priority.clone()
        prio[bad % self.capacity] = 0.0
        return prio

    def update_priorities(self, indices: Tensor, td_errors: Tensor) -> None:
        """Set the priorities of the transitions starting at absolute ``indices`` (B,) to
        ``|td_errors| + eps`` (B,); indices overwritten since they were sampled are skipped."""
        j = torch.as_tensor(indices, dtype=torch.long).reshape(-1).cpu()
        raw = torch.as_tensor(td_errors).detach().reshape(-1).double().cpu().abs() + self.eps
        if j.shape != raw.shape:
            raise ValueError(f"{j.numel()} indices but {raw.numel()} TD errors.")
        live = j >= max(0, self.total - self.capacity)
        if bool(live.any()):
            self.priority[j[live] % self.capacity] = raw[live] ** self.alpha
            self.max_priority = max(self.max_priority, float(raw[live].max()))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["priority"] = self.priority
        state["max_priority"] = self.max_priority
        state["config"] = {**state["config"], "alpha": self.alpha, "eps": self.eps}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "priority" not in state:
            raise ValueError(
                "this replay buffer was saved without priorities (a uniform FrameReplayBuffer); "
                "resume with the run's own settings (prioritized off)."
            )
        super().load_state_dict(state)
        self.priority.copy_(state["priority"])
        self.max_priority = float(state["max_priority"])
