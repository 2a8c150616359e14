"""Not a measurement: a checkpoint's weights without its self-attention block, as a new checkpoint.

    python3 benchmarks/drop_attention.py runs/bytes-linf runs/bytes-noattn

The integer network of the portable arithmetic (integer_net.py) covers U-Nets without
attention, so a model trained with --attention cannot be calibrated. This keeps every other
weight (the EMA weights of the source), sets "attention": false, records the step in the
config, and leaves no optimiser state, so `bfn-codec train --resume` on the new folder continues
from these weights with a fresh optimiser (the text-bytes model's second stage, docs/training.md).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file


def main(src: str, dst: str) -> None:
    src_dir, dst_dir = Path(src), Path(dst)
    cfg = json.loads((src_dir / "config.json").read_text())
    state = {k: v for k, v in load_file(str(src_dir / "model.safetensors")).items() if not k.startswith("mid_attn.")}
    cfg["network"]["attention"] = False
    training = cfg["info"].setdefault("training", {})
    training.setdefault("earlier_commands", []).append(
        {"command": training.get("command"), "until_step": training.get("step")})
    training["command"] = f"python3 benchmarks/drop_attention.py {src} {dst}"
    cfg.pop("weights_sha256", None)
    cfg.pop("integer", None)
    dst_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dst_dir / "model.safetensors"))
    (dst_dir / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    print(f"{dst}: {len(state)} tensors, attention dropped, from step {training.get('step')}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
