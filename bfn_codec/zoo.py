"""The bundled models' registry: bfn_codec/zoo/NAME holds model.safetensors and config.json.
Reading it needs no torch, so the command line can answer from a file's header at once."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

ZOO_DIR = Path(__file__).parent / "zoo"


class ModelError(Exception):
    """A model could not be found or loaded (message is user-facing)."""


def available_models() -> list[str]:
    if not ZOO_DIR.is_dir():
        return []
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "config.json").is_file())


def portable_identity(weights_sha256: str | None, integer: dict | None) -> bytes | None:
    """What a revision-6 file records as its model (the header's model hash): the SHA-256 of
    the weights' hash and the integer calibration, since both define its probabilities. A model
    calibrated again is a different model for these files, refused by name instead of decoding
    to a checksum error. None without a calibration for these weights."""
    if not weights_sha256 or not integer or integer.get("weights_sha256") != weights_sha256:
        return None
    fields = {k: integer[k] for k in ("act_bits", "weight_bits", "input_bits", "scales")}
    text = weights_sha256 + json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).digest()


def calibrations(config: dict) -> list[dict]:
    """A model's integer calibrations (config.json): the one it codes with ("integer"), then the
    earlier ones it keeps ("integer_earlier") so that files written with them still decode."""
    return [c for c in [config.get("integer"), *(config.get("integer_earlier") or [])] if c]


def bundled_model_for(model_hash: bytes) -> str | None:
    """The bundled model whose weights' SHA-256, or one of whose portable identities (revision
    6-8 files: its calibration or a kept earlier one), starts with ``model_hash`` (from its
    config.json, without loading it), or None."""
    if not model_hash:
        return None
    for name in available_models():
        try:
            cfg = json.loads((ZOO_DIR / name / "config.json").read_text())
        except (OSError, ValueError):
            continue
        sha = cfg.get("weights_sha256", "")
        if sha and bytes.fromhex(sha).startswith(model_hash):
            return name
        for cal in calibrations(cfg):
            ident = portable_identity(sha, cal)
            if ident and ident.startswith(model_hash):
                return name
    return None
