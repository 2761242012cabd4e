"""The frame replay buffer: one copy of each frame, stacks by index that equal the stacks the
agent acted on (episode boundaries and ring wrap-around included), n-step returns equal to
an explicit loop, and an exact state round trip."""

from __future__ import annotations

import pytest
import torch

from contrastkit.memory.replay import FrameReplayBuffer, FrameStack

SHAPE = (1, 2, 2)


def _frame(value: int) -> torch.Tensor:
    return torch.full(SHAPE, value % 256, dtype=torch.uint8)


def _play(buf: FrameReplayBuffer, lengths, ends, k: int, seed: int = 0):
    """Write episodes of the given lengths (ends: 'term' or 'trunc'); frame t has value t.
    Returns the acting-side stacks by absolute index, and the per-episode reward lists."""
    g = torch.Generator().manual_seed(seed)
    acted: dict[int, torch.Tensor] = {}
    episodes = []
    t = 0
    for length, end in zip(lengths, ends, strict=True):
        stack = FrameStack(k)
        acted[t] = stack.reset(_frame(t))
        buf.start_episode(_frame(t))
        first = t
        rewards, actions = [], []
        for i in range(length):
            r = float(torch.rand((), generator=g))
            a = int(torch.randint(5, (), generator=g))
            last = i == length - 1
            t += 1
            buf.add(
                a, r, _frame(t), terminal=last and end == "term", truncated=last and end == "trunc"
            )
            acted[t] = stack.push(_frame(t))
            rewards.append(r)
            actions.append(a)
        t += 1
        episodes.append({"first": first, "rewards": rewards, "actions": actions, "end": end})
    return acted, episodes


def test_each_frame_is_stored_once():
    buf = FrameReplayBuffer(1000, SHAPE, stack=4, n_step=3)
    _play(buf, [5, 7, 3], ["term", "trunc", "term"], k=4)
    # one frame per step plus the first frame of each episode, nothing else
    assert buf.total == (5 + 1) + (7 + 1) + (3 + 1)
    assert buf.frames.shape == (1000, *SHAPE)  # the only frame storage: capacity frames
    assert [int(f[0, 0, 0]) for f in buf.frames[: buf.total]] == list(range(buf.total))
    assert buf.frames_stored == buf.total == len(buf)


@pytest.mark.parametrize("capacity", [1000, 13])
def test_stacks_equal_the_acting_stacks_at_episode_boundaries(capacity):
    k = 3
    buf = FrameReplayBuffer(capacity, SHAPE, stack=k, n_step=2)
    acted, _ = _play(buf, [1, 4, 2, 6], ["term", "trunc", "term", "trunc"], k=k)
    oldest = max(0, buf.total - capacity)
    checked = 0
    for t, stack in acted.items():
        start = int(buf.episode_start[t % capacity])
        if t < oldest or max(t - k + 1, start) < oldest:
            continue  # overwritten
        got = buf.stacks(torch.tensor([t]))[0]
        assert torch.equal(got, stack), t
        checked += 1
    assert checked >= min(len(acted), capacity - k)
    if capacity >= buf.total:  # the first frame of an episode is repeated, never the last one's
        assert buf.stacks(torch.tensor([2]))[0, :, 0, 0].tolist() == [2, 2, 2]
        assert buf.stacks(torch.tensor([3]))[0, :, 0, 0].tolist() == [2, 2, 3]


def _expected(episodes, k_n: int, gamma: float):
    """Explicit loop: every start index → (return, discount, next index)."""
    out = {}
    for ep in episodes:
        rewards, first, n = ep["rewards"], ep["first"], len(ep["rewards"])
        for i in range(n):
            ret, disc, m = 0.0, 1.0, 0
            done = False
            for o in range(k_n):
                if i + o >= n:
                    break
                ret += disc * rewards[i + o]
                disc *= gamma
                m += 1
                if i + o == n - 1 and ep["end"] == "term":
                    done = True
                    break
            out[first + i] = (ret, 0.0 if done else disc, first + i + m, ep["actions"][i])
    return out


@pytest.mark.parametrize("n_step", [1, 3, 5])
def test_n_step_returns_equal_an_explicit_loop(n_step):
    gamma = 0.9
    buf = FrameReplayBuffer(1000, SHAPE, stack=2, n_step=n_step, gamma=gamma)
    _, episodes = _play(buf, [4, 2, 6, 1], ["term", "trunc", "trunc", "term"], k=2)
    expected = _expected(episodes, n_step, gamma)
    j = torch.arange(buf.total)
    t = buf._transitions(j)
    valid = set(j[t["valid"]].tolist())
    assert valid == set(expected)  # episodes' last frames are never starts
    for s, (ret, disc, nxt, _) in expected.items():
        assert float(t["returns"][s]) == pytest.approx(ret, abs=1e-6)
        assert float(t["discounts"][s]) == pytest.approx(disc, abs=1e-6)
        assert int(t["next_index"][s]) == nxt
    b = buf.sample(64, generator=torch.Generator().manual_seed(0))
    for i, s in enumerate(b["indices"].tolist()):
        ret, disc, nxt, a = expected[s]
        assert int(b["actions"][i]) == a
        assert float(b["returns"][i]) == pytest.approx(ret, abs=1e-6)
        assert torch.equal(b["next_obs"][i], buf.stacks(torch.tensor([nxt]))[0])
        assert torch.equal(b["obs"][i], buf.stacks(torch.tensor([s]))[0])


def test_an_open_episode_gives_only_complete_windows():
    buf = FrameReplayBuffer(100, SHAPE, stack=1, n_step=3, gamma=1.0)
    buf.start_episode(_frame(0))
    for t in range(1, 5):
        buf.add(0, 1.0, _frame(t))
    t = buf._transitions(torch.arange(buf.total))
    # starts 0 and 1 have 3 later rewards; 2 and 3 would need steps not taken yet
    assert t["valid"].tolist() == [True, True, False, False, False]
    assert t["returns"][:2].tolist() == [3.0, 3.0]


def test_errors_name_the_fix():
    buf = FrameReplayBuffer(10, SHAPE, stack=2)
    with pytest.raises(RuntimeError, match="start_episode"):
        buf.add(0, 0.0, _frame(1))
    with pytest.raises(ValueError, match="no transition yet"):
        buf.sample(2)
    with pytest.raises(ValueError, match=r"uint8 of shape \(1, 2, 2\)"):
        buf.start_episode(torch.zeros(2, 2, 1, dtype=torch.uint8))
    buf.start_episode(_frame(0))
    buf.add(0, 1.0, _frame(1), terminal=True)
    with pytest.raises(RuntimeError, match="start_episode"):
        buf.add(0, 0.0, _frame(2))
    with pytest.raises(ValueError, match="capacity"):
        FrameReplayBuffer(1, SHAPE)


def test_state_round_trip_continues_identically(tmp_path):
    from contrastkit.train.checkpoint import load_state, save_state

    a = FrameReplayBuffer(20, SHAPE, stack=3, n_step=2)
    _play(a, [4, 9], ["term", "trunc"], k=3)
    a.start_episode(_frame(200))
    a.add(1, 0.5, _frame(201))
    save_state(tmp_path / "b.safetensors", a.state_dict())
    b = FrameReplayBuffer(20, SHAPE, stack=3, n_step=2)
    b.load_state_dict(load_state(tmp_path / "b.safetensors"))
    for buf in (a, b):
        buf.add(2, 1.0, _frame(202), terminal=True)
    sa = a.sample(16, torch.Generator().manual_seed(3))
    sb = b.sample(16, torch.Generator().manual_seed(3))
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    with pytest.raises(ValueError, match="own settings"):
        FrameReplayBuffer(20, SHAPE, stack=2, n_step=2).load_state_dict(a.state_dict())
