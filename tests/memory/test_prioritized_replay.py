"""Prioritized frame replay: draws in proportion to p^α (checked by counting), importance
weights equal to the formula, new transitions at the largest priority, overwritten slots
never drawn, and an exact state round trip."""

from __future__ import annotations

import pytest
import torch

from contrastkit.memory.replay import FrameReplayBuffer, PrioritizedFrameReplayBuffer

SHAPE = (1, 2, 2)


def _frame(value: int) -> torch.Tensor:
    return torch.full(SHAPE, value % 256, dtype=torch.uint8)


def _fill(buf: FrameReplayBuffer, episodes: list[int], seed: int = 0) -> None:
    """Episodes of the given lengths, each ending in a terminal state; frame t has value t."""
    g = torch.Generator().manual_seed(seed)
    t = 0
    for length in episodes:
        buf.start_episode(_frame(t))
        for i in range(length):
            t += 1
            buf.add(int(torch.randint(3, (), generator=g)), float(torch.rand((), generator=g)),
                    _frame(t), terminal=i == length - 1)  # fmt: skip
        t += 1


def _valid(buf: FrameReplayBuffer) -> torch.Tensor:
    j = torch.arange(max(0, buf.total - buf.capacity), buf.total)
    return j[buf._transitions(j)["valid"]]


@pytest.mark.parametrize("capacity", [1000, 37], ids=["no-wrap", "wrapped"])
def test_draws_follow_priority_to_the_alpha_and_weights_follow_the_formula(capacity):
    alpha, beta = 0.6, 0.5
    buf = PrioritizedFrameReplayBuffer(capacity, SHAPE, stack=2, n_step=2, alpha=alpha)
    _fill(buf, [7, 5, 9, 6, 8])
    valid = _valid(buf)
    g = torch.Generator().manual_seed(1)
    td = torch.rand(valid.numel(), generator=g) * 4
    buf.update_priorities(valid, td)
    # the expected distribution, by a loop over the held transitions
    p = {}
    for j in range(max(0, buf.total - capacity), buf.total):
        slot = j % capacity
        if float(buf.priority[slot]) > 0:
            p[j] = float(buf.priority[slot])
    for j, e in zip(valid.tolist(), td.tolist(), strict=True):
        assert p[j] == pytest.approx((e + buf.eps) ** alpha)
    ok = {j: p[j] for j in valid.tolist()}  # starts that are not valid yet are never drawn
    z = sum(ok.values())
    draws = torch.cat([buf.sample(500, g, beta=beta)["indices"] for _ in range(40)])  # 20,000 draws
    for j, pj in ok.items():
        share = float((draws == j).double().mean())
        assert share == pytest.approx(pj / z, abs=0.012), j
    assert set(draws.tolist()) <= set(ok)
    b = buf.sample(64, g, beta=beta)
    n, p_min = len(ok), min(ok.values()) / z
    for j, w in zip(b["indices"].tolist(), b["weights"].tolist(), strict=True):
        expected = (n * ok[j] / z) ** (-beta) / (n * p_min) ** (-beta)
        assert w == pytest.approx(expected, rel=1e-5)
    assert float(b["weights"].max()) <= 1.0 + 1e-6


def test_batches_equal_the_uniform_buffers_for_the_same_indices():
    uni = FrameReplayBuffer(50, SHAPE, stack=3, n_step=3, gamma=0.9)
    pri = PrioritizedFrameReplayBuffer(50, SHAPE, stack=3, n_step=3, gamma=0.9)
    for b in (uni, pri):
        _fill(b, [12, 4, 20, 9, 15])
    b = pri.sample(32, torch.Generator().manual_seed(0))
    ref = uni._batch(b["indices"])
    for k, v in ref.items():
        assert torch.equal(v, b[k]), k


def test_new_transitions_get_the_largest_priority_and_overwritten_ones_are_dropped():
    buf = PrioritizedFrameReplayBuffer(20, SHAPE, stack=1, n_step=1, alpha=1.0)
    _fill(buf, [5])
    buf.update_priorities(torch.tensor([0, 1]), torch.tensor([7.0, 0.5]))
    assert buf.max_priority == pytest.approx(7.0 + buf.eps)
    _fill(buf, [3])  # frames 6..9 (values restart; only the priorities matter here)
    new = buf.total - 2  # the last recorded transition
    assert float(buf.priority[new % 20]) == pytest.approx(7.0 + buf.eps)
    # an episode's last frame has no transition: priority 0, never drawn
    assert float(buf.priority[(buf.total - 1) % 20]) == 0.0
    _fill(buf, [30])  # wraps: indices 0 and 1 are overwritten
    before = buf.priority.clone()
    buf.update_priorities(torch.tensor([0, 1]), torch.tensor([100.0, 100.0]))
    assert torch.equal(buf.priority, before) and buf.max_priority < 100
    with pytest.raises(ValueError, match="2 indices but 1 TD errors"):
        buf.update_priorities(torch.tensor([30, 31]), torch.tensor([1.0]))


def test_an_open_episodes_incomplete_windows_are_never_drawn():
    buf = PrioritizedFrameReplayBuffer(100, SHAPE, stack=1, n_step=3, alpha=1.0)
    buf.start_episode(_frame(0))
    for t in range(1, 6):
        buf.add(0, 1.0, _frame(t))  # open episode: starts 3 and 4 lack 3 later steps
    buf.update_priorities(torch.tensor([3, 4]), torch.tensor([1e6, 1e6]))
    got = buf.sample(200, torch.Generator().manual_seed(0))["indices"]
    assert set(got.tolist()) <= {0, 1, 2}


def test_state_round_trip_continues_exactly():
    a = PrioritizedFrameReplayBuffer(40, SHAPE, stack=2, n_step=2, alpha=0.5)
    _fill(a, [10, 12, 30])
    a.update_priorities(_valid(a)[:10], torch.arange(10.0))
    b = PrioritizedFrameReplayBuffer(40, SHAPE, stack=2, n_step=2, alpha=0.5)
    b.load_state_dict(a.state_dict())
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s1, s2 = a.sample(16, g1, beta=0.7), b.sample(16, g2, beta=0.7)
    for k in s1:
        assert torch.equal(s1[k], s2[k]), k
    with pytest.raises(ValueError, match="without priorities"):
        b.load_state_dict(FrameReplayBuffer(40, SHAPE, stack=2, n_step=2).state_dict())
    with pytest.raises(ValueError, match="alpha must be"):
        PrioritizedFrameReplayBuffer(40, SHAPE, alpha=-1.0)
