"""``torchrun --nproc_per_node 2 -m contrastkit train`` on this CPU (gloo)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


def test_torchrun_two_processes_train_and_write_once(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun) if torchrun.exists() else shutil.which("torchrun") or "torchrun"]
    cmd += ["--nproc_per_node", "2", "-m", "contrastkit", "train", "--data", "digits"]
    cmd += ["--epochs", "2", "--batch-size", "128", "--out", str(tmp_path / "run")]
    cmd += ["--no-report", "--no-progress", "--no-linear-probe"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout[out.stdout.index("{") :])  # printed once, by process 0
    assert out.stdout.count('"out_dir"') == 1 and 0.0 < summary["metrics"]["knn_accuracy"] <= 1.0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    rows = (tmp_path / "run" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and results["history"][-1]["epoch"] == 2
    assert (tmp_path / "run" / "encoder.safetensors").exists()
