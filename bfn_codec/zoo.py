"""The bundled models' registry: bfn_codec/zoo/NAME holds model.safetensors and config.json.
Reading it needs no torch, so the command line can answer from a file's header at once."""
from __future__ import annotations

import json
from pathlib import Path

ZOO_DIR = Path(__file__).parent / "zoo"


class ModelError(Exception):
    """A model could not be found or loaded (message is user-facing)."""


def available_models() -> list[str]:
    if not ZOO_DIR.is_dir():
        return []
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "config.json").is_file())


def bundled_model_for(weights_hash: bytes) -> str | None:
    """The bundled model whose weights' SHA-256 starts with ``weights_hash`` (from its
    config.json, without loading it), or None."""
    if not weights_hash:
        return None
    for name in available_models():
        try:
            sha = json.loads((ZOO_DIR / name / "config.json").read_text()).get("weights_sha256", "")
        except (OSError, ValueError):
            continue
        if sha and bytes.fromhex(sha).startswith(weights_hash):
            return name
    return None
