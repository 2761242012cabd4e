"""Exported encoders: ``encoder.safetensors`` + ``encoder.json``, loadable without recipe code."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from contrastkit.train.checkpoint import (
    atomic_write_bytes,
    damaged,
    file_sha256,
    load_state,
    save_state,
)

__all__ = ["export_encoder", "load_encoder"]


def export_encoder(encoder: torch.nn.Module, out_dir: str | os.PathLike, name: str) -> Path:
    """Write ``encoder.safetensors`` + ``encoder.json`` (architecture name and config).

    The pair loads with :func:`load_encoder` without any recipe class. An encoder with an
    ``export_assets(folder)`` method (Hugging Face text encoders: tokenizer + model config)
    writes them to ``out_dir/hf`` too, so the export does not depend on the base model's
    folder; its ``model_path`` is then stored relative to ``out_dir``. ``encoder.json`` holds
    the SHA-256 of ``encoder.safetensors`` (``sha256``), checked by :func:`load_encoder`.
    """
    out = Path(out_dir)
    save_state(out / "encoder.safetensors", {"state_dict": encoder.state_dict()})
    config = getattr(encoder, "config", {})
    if hasattr(encoder, "export_assets"):
        config = encoder.export_assets(out / "hf")
    meta = {
        "encoder": name,
        "config": config,
        "out_dim": encoder.out_dim,
        "sha256": file_sha256(out / "encoder.safetensors"),
    }
    atomic_write_bytes(out / "encoder.json", json.dumps(meta, indent=2).encode())
    return out / "encoder.safetensors"


def load_encoder(path: str | os.PathLike, device: str = "cpu") -> torch.nn.Module:
    """Load an encoder written by :func:`export_encoder` (a directory or its .safetensors).

    Raises:
        FileNotFoundError: the folder or one of its two files is missing.
        DamagedFileError: a file does not match its checksum (or cannot be parsed).
        ValueError: the weights do not fit the encoder that ``encoder.json`` names.
    """
    from contrastkit.encoders import build_encoder

    p = Path(path)
    folder = p.parent if p.is_file() or p.suffix == ".safetensors" else p
    expected = (
        "expected encoder.json + encoder.safetensors there, as written by `contrastkit train` "
        "(or export_encoder)"
    )
    if not folder.is_dir():
        raise FileNotFoundError(f"encoder folder {folder} does not exist; {expected}.")
    weights = folder / "encoder.safetensors"
    for f in (folder / "encoder.json", weights):
        if not f.is_file():
            raise FileNotFoundError(
                f"{folder} holds no exported encoder (no {f.name}); {expected}."
            )
    try:
        meta = json.loads((folder / "encoder.json").read_text())
        name, config = meta["encoder"], dict(meta["config"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise damaged(folder / "encoder.json", f"{type(err).__name__}: {err}") from None
    if meta.get("sha256") and file_sha256(weights) != meta["sha256"]:
        raise damaged(weights, "its sha256 differs from the one in encoder.json")
    if "model_path" in config and not Path(config["model_path"]).is_absolute():
        config["model_path"] = str(folder / config["model_path"])  # exported with the encoder
    encoder = build_encoder(name, **config)
    state = load_state(weights, device=device)["state_dict"]
    load_weights(encoder, state, f"the encoder in {folder}", "a complete export (train again)")
    return encoder.to(device).eval()


def load_weights(module: torch.nn.Module, state: dict[str, Any], what: str, fix: str) -> None:
    """``module.load_state_dict(state)``, with one line instead of torch's long error when
    the keys or shapes differ: ``what`` names the source, ``fix`` says what to use instead."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("keys of another shape", shapes),
        ):
            if keys:
                shown = ", ".join(keys[:5]) + (f", … ({len(keys)} in all)" if len(keys) > 5 else "")
                parts.append(f"{label}: {shown}")
        raise ValueError(
            f"{what} was trained with a different model ({'; '.join(parts)}); use {fix}."
        )
    module.load_state_dict(state)
