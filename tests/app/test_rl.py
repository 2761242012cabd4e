"""The pixel RL pipeline: exact resume, the saved encoder, evaluation, the probe, the report
and the ``contrastkit rl`` command, on MiniGrid DoorKey-5x5 with a tiny network."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

pytest.importorskip("minigrid", reason="the [rl] extra (gymnasium, minigrid) is not installed")

from contrastkit.app.rl import (
    PixelEnv,
    RLConfig,
    collect_probe_data,
    episode_seed,
    probe_encoders,
    train_agent,
    write_rl_report,
)

TINY = RLConfig(
    steps=160,
    learning_starts=48,
    batch_size=8,
    buffer_size=400,
    filters=8,
    conv_layers=2,
    feature_dim=16,
    hidden=32,
    target_update=20,
    eps_decay_steps=100,
    eval_every=80,
    eval_episodes=2,
    checkpoint_every=0,
    lr=1e-3,
    n_step=3,
    update_every=1,
)


def _weights(result) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in result["agent"].state_dict().items()}


@pytest.mark.parametrize(
    "curl, prioritized, noisy",
    [(True, True, False), (False, True, False), (True, False, False), (True, True, True)],
    ids=["curl", "no-curl", "curl-uniform", "curl-noisy"],
)
def test_resume_equals_an_uninterrupted_run(tmp_path, curl, prioritized, noisy):
    config = dataclasses.replace(TINY, curl=curl, prioritized=prioritized, noisy=noisy)
    whole = train_agent(config, tmp_path / "whole", progress=False)
    first = train_agent(config, tmp_path / "parts", stop_at=97, progress=False)  # mid-episode
    assert first["steps"] == 97 and (tmp_path / "parts" / "buffer.safetensors").exists()
    rest = train_agent(config, tmp_path / "parts", resume=True, progress=False)
    a, b = _weights(whole), _weights(rest)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert whole["updates"] == rest["updates"] == config.steps - config.learning_starts + 1
    assert whole["evals"] == rest["evals"]
    assert [e["step"] for e in whole["evals"]] == [0, 80, 160]
    assert whole["episodes"] == rest["episodes"]
    history = json.loads((tmp_path / "parts" / "history.json").read_text())
    assert history["evals"] == whole["evals"]
    # CURL's parts are trained and checkpointed with the rest
    assert ("curl.W" in a) is curl
    # noisy nets: the head's noise was drawn (and is part of the exact state)
    assert ("q.advantage.0.eps_in" in a) is noisy
    if noisy:
        assert a["q.advantage.0.eps_in"].abs().sum() > 0


def test_noisy_nets_explore_in_training_and_act_on_the_mean_in_evaluation():
    from contrastkit.app.rl import DQNAgent
    from contrastkit.heads.noisy import NoisyLinear, reset_noise

    config = dataclasses.replace(TINY, noisy=True, noisy_sigma=0.5)
    agent = DQNAgent(config, (3, 40, 40), 7)
    layers = [m for m in agent.q.modules() if isinstance(m, NoisyLinear)]
    assert len(layers) == 4  # both layers of the advantage and the value MLPs
    obs = torch.randint(0, 256, (16, 9, 40, 40), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    reset_noise(agent.q, g)
    first = agent.greedy(obs)
    reset_noise(agent.q, g)
    assert not torch.equal(first, agent.greedy(obs))  # the noise changes the actions
    agent.eval()
    mean = agent.greedy(obs)
    reset_noise(agent.q, g)
    assert torch.equal(mean, agent.greedy(obs))  # evaluation ignores the noise


def test_resume_checks_its_settings(tmp_path):
    train_agent(TINY, tmp_path, stop_at=60, progress=False)
    other = dataclasses.replace(TINY, lr=5e-4)
    with pytest.raises(ValueError, match="lr"):
        train_agent(other, tmp_path, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="without --resume"):
        train_agent(TINY, tmp_path / "none", resume=True, progress=False)


def test_a_checkpoint_from_before_prioritized_replay_resumes_as_uniform(tmp_path):
    from contrastkit.train.checkpoint import load_state, save_state

    uniform = dataclasses.replace(TINY, prioritized=False)
    train_agent(uniform, tmp_path, stop_at=60, progress=False)
    path = tmp_path / "checkpoint.safetensors"
    ck = load_state(path)
    for key in ("prioritized", "priority_alpha", "priority_beta"):
        del ck["config"][key]  # as written before these fields existed
    save_state(path, ck)
    with pytest.raises(ValueError, match="prioritized"):
        train_agent(dataclasses.replace(TINY, prioritized=True), tmp_path, resume=True,
                    progress=False)  # fmt: skip
    done = train_agent(uniform, tmp_path, resume=True, progress=False)
    assert done["steps"] == TINY.steps


def test_the_saved_encoder_loads_without_the_agent(tmp_path):
    from contrastkit.train.export import load_encoder

    result = train_agent(dataclasses.replace(TINY, steps=60, eval_every=0), tmp_path,
                         progress=False)  # fmt: skip
    enc = load_encoder(tmp_path / "encoder")
    x = torch.randint(0, 256, (3, 9, 36, 36), dtype=torch.uint8)
    assert torch.equal(enc(x), result["agent"].q.encoder(x))


def test_episode_seeds_fix_the_layouts():
    env = PixelEnv("MiniGrid-DoorKey-5x5-v0")
    a = env.reset(episode_seed(3, 7))
    env.step(2)
    b = env.reset(episode_seed(3, 7))
    assert a.shape == (3, 40, 40) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert episode_seed(3, 7) != episode_seed(3, 8) != episode_seed(4, 7)


def test_probe_data_states_match_the_environment():
    data = collect_probe_data(TINY, episodes=3, max_steps=20, seed=1)
    n = data["obs"].shape[0]
    assert data["obs"].shape == (n, 9, 40, 40) and 3 <= n <= 60
    cells, dirs = data["states"]["cell"], data["states"]["direction"]
    assert cells.shape == dirs.shape == (n,) and set(dirs.tolist()) <= {0, 1, 2, 3}
    # interior cells of a 5×5 grid: x, y in 1..3
    assert all(1 <= c % 5 <= 3 and 1 <= c // 5 <= 3 for c in cells.tolist())


def test_probe_and_report(tmp_path):
    result = train_agent(dataclasses.replace(TINY, steps=60, eval_every=30), tmp_path / "run",
                         progress=False)  # fmt: skip
    from contrastkit.encoders.pixel import PixelEncoder

    torch.manual_seed(0)
    rnd = PixelEncoder(9, 36, 16, 8, 2)
    probe = probe_encoders({"agent": result["agent"].q.encoder, "random": rnd}, TINY, episodes=8)
    assert set(probe) == {"agent", "random"}
    for per in probe.values():
        assert set(per) == {"cell", "direction", "carrying"}
        for r in per.values():
            assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["chance"] <= 1.0
    path = write_rl_report(tmp_path / "report.html", {"CURL": [result]}, probe=probe)
    page = path.read_text()
    assert "Learning curves" in page and "State decoding" in page and "<img" in page


def test_prioritized_td_loss_is_the_weighted_mean_and_errors_are_returned():
    from contrastkit.app.rl import DQNAgent
    from contrastkit.memory.replay import PrioritizedFrameReplayBuffer

    config = dataclasses.replace(TINY, curl=False, augment=False, prioritized=True)
    env = PixelEnv(config.env, config.tile_size)
    buf = PrioritizedFrameReplayBuffer(200, (3, 40, 40), stack=3, n_step=3)
    buf.start_episode(env.reset(0))
    for a in [0, 1, 2, 2, 1, 0, 2, 2, 2, 1]:
        frame, r, term, trunc = env.step(a)
        buf.add(a, r, frame, terminal=term, truncated=trunc)
    torch.manual_seed(0)
    agent = DQNAgent(config, (3, 40, 40), env.n_actions)
    g = torch.Generator().manual_seed(0)
    batch = buf.sample(8, g, beta=0.5)
    batch["weights"] = torch.linspace(0.1, 1.0, 8)
    td, _, _, err = agent.td_and_curl(batch, g)
    huber = torch.where(err.abs() < 1, 0.5 * err**2, err.abs() - 0.5)
    assert td.item() == pytest.approx(float((batch["weights"] * huber).mean()), rel=1e-5)
    plain = agent.td_and_curl({k: v for k, v in batch.items() if k != "weights"}, g)[0]
    assert plain.item() == pytest.approx(float(huber.mean()), rel=1e-5)


def test_config_errors_name_the_option():
    with pytest.raises(ValueError, match="learning_starts"):
        dataclasses.replace(TINY, learning_starts=4).validate()
    with pytest.raises(ValueError, match="gamma"):
        dataclasses.replace(TINY, gamma=1.5).validate()
    with pytest.raises(ValueError, match="priority_beta"):
        dataclasses.replace(TINY, priority_beta=1.5).validate()
    with pytest.raises(ValueError, match="crop_size 48"):
        train_agent(dataclasses.replace(TINY, crop_size=48), "/tmp/never", progress=False)


def test_rl_command(tmp_path):
    from typer.testing import CliRunner

    from contrastkit.cli.main import app

    sets = [f"{f.name}={getattr(TINY, f.name)}" for f in dataclasses.fields(TINY)
            if f.name not in ("env", "curl", "steps", "seed")]  # fmt: skip
    args = ["rl", "--steps", "60", "--seeds", "0,1", "--out", str(tmp_path)]
    for s in sets:
        args += ["--set", s]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "seed 1: step 60" in result.output and "mean over 2 seeds" in result.output
    assert (tmp_path / "report.html").exists() and (tmp_path / "seed-1" / "encoder").is_dir()
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["agent"] == "CURL" and len(summary["runs"]) == 2
    bad = runner.invoke(app, ["rl", "--out", str(tmp_path), "--set", "n_stp=3"])
    assert bad.exit_code == 2 and "n_step" in bad.output
    bad = runner.invoke(app, ["rl", "--out", str(tmp_path), "--set", "lr=fast"])
    assert bad.exit_code == 2 and "expected a float" in bad.output
