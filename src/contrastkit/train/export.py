"""Exported encoders: ``encoder.safetensors`` + ``encoder.json``, loadable without recipe code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from contrastkit.train.checkpoint import atomic_write_bytes, load_state, save_state

__all__ = ["export_encoder", "load_encoder"]


def export_encoder(encoder: torch.nn.Module, out_dir: str | os.PathLike, name: str) -> Path:
    """Write ``encoder.safetensors`` + ``encoder.json`` (architecture name and config).

    The pair loads with :func:`load_encoder` without any recipe class. An encoder with an
    ``export_assets(folder)`` method (Hugging Face text encoders: tokenizer + model config)
    writes them to ``out_dir/hf`` too, so the export does not depend on the base model's
    folder; its ``model_path`` is then stored relative to ``out_dir``.
    """
    out = Path(out_dir)
    save_state(out / "encoder.safetensors", {"state_dict": encoder.state_dict()})
    config = getattr(encoder, "config", {})
    if hasattr(encoder, "export_assets"):
        config = encoder.export_assets(out / "hf")
    meta = {"encoder": name, "config": config, "out_dim": encoder.out_dim}
    atomic_write_bytes(out / "encoder.json", json.dumps(meta, indent=2).encode())
    return out / "encoder.safetensors"


def load_encoder(path: str | os.PathLike, device: str = "cpu") -> torch.nn.Module:
    """Load an encoder written by :func:`export_encoder` (a directory or its .safetensors)."""
    from contrastkit.encoders import build_encoder

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    meta = json.loads((folder / "encoder.json").read_text())
    config = dict(meta["config"])
    if "model_path" in config and not Path(config["model_path"]).is_absolute():
        config["model_path"] = str(folder / config["model_path"])  # exported with the encoder
    encoder = build_encoder(meta["encoder"], **config)
    state = load_state(folder / "encoder.safetensors", device=device)["state_dict"]
    encoder.load_state_dict(state)
    return encoder.to(device).eval()
