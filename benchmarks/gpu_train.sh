#!/usr/bin/env bash
# Train a bundled model's architecture on one GPU for a wall-clock budget, then copy the weights out.
#
#   benchmarks/gpu_train.sh MODEL MINUTES [OUT_DIR]
#
# MODEL: a bundled model (fmnist-binary, fmnist, photo-rgb). By default the run continues from the bundled weights with the
# loss the codec pays (L^n + L^r at the model's n and time grid, docs/training.md); FRESH=1 starts
# from random weights with L^inf. OUT_DIR (default $OUT, the device tool's output folder, else
# runs/gpu-MODEL) receives model.safetensors + config.json (and the log), ready for
#   bfn-codec calibrate OUT_DIR --dataset MODEL   and   benchmarks/codec_bench.py --model OUT_DIR
# on the CPU. Settings by environment: DEVICE (cuda), BATCH (256), LR (1e-4; 2e-4 with FRESH=1),
# AMP (bf16; empty for float32), COMPILE (1: torch.compile), DATA_DIR (Fashion-MNIST IDX files:
# the lent GPU machine cannot reach the network, so carry them with the repository), SEED (0),
# DATASET (default MODEL: the training data, e.g. images:DIR@32 for photo-rgb), LOSS (codec: L^n + L^r
# at the model's n and grid; inf: L^inf, e.g. a first stage before a second run with the codec's
# loss: the second run resumes the first one's weights and optimiser), EMA (the train default).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${1:?usage: benchmarks/gpu_train.sh MODEL MINUTES [OUT_DIR]}
MINUTES=${2:?usage: benchmarks/gpu_train.sh MODEL MINUTES [OUT_DIR]}
DEST=${3:-${OUT:-runs/gpu-$MODEL}}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-256}
AMP=${AMP-bf16}
SEED=${SEED:-0}
RUN=runs/gpu-train-$MODEL

python3 -c "import bfn_codec" 2>/dev/null || python3 -m pip install -q -e .
mkdir -p "$RUN" "$DEST"
args=(train --dataset "${DATASET:-$MODEL}" --out "$RUN" --device "$DEVICE" --batch-size "$BATCH" --seed "$SEED"
      --max-minutes "$MINUTES" --steps 100000000 --checkpoint-every 500 --validate-every 2000)
[ -n "${DATA_DIR:-}" ] && args+=(--data-dir "$DATA_DIR")
[ -n "$AMP" ] && args+=(--amp "$AMP")
[ "${COMPILE:-0}" = 1 ] && args+=(--compile)
[ -n "${EMA:-}" ] && args+=(--ema-decay "$EMA")

if [ "${FRESH:-0}" = 1 ]; then
  # the bundled architecture, from random weights, with L^inf
  read -r -a arch < <(python3 - "$MODEL" <<'EOF'
import sys
from bfn_codec.models import load_model
n = load_model(sys.argv[1]).network_config
print("--channels", n["channels"], "--channel-mult", ",".join(map(str, n["channel_mult"])),
      "--res-blocks", n["num_res_blocks"], "--unshuffle", n["unshuffle"],
      "--attention" if n.get("attention") else "--no-attention")
EOF
)
  args+=("${arch[@]}" --lr "${LR:-2e-4}")
else
  # continue from the bundled weights (resume from weights alone: fresh optimiser) with L^n + L^r
  if [ ! -f "$RUN/model.safetensors" ]; then
    cp "bfn_codec/zoo/$MODEL/model.safetensors" "bfn_codec/zoo/$MODEL/config.json" "$RUN/"
  fi
  read -r steps power < <(python3 -c "
from bfn_codec.models import load_model
c = load_model('$MODEL').info['codec']; print(c['steps'], c['grid_power'])")
  args+=(--resume --lr "${LR:-1e-4}")
  [ "${LOSS:-codec}" = inf ] || args+=(--loss-steps "$steps" --grid-power "$power")
fi

echo "bfn-codec ${args[*]}" | tee -a "$DEST/train.log"
python3 -m bfn_codec "${args[@]}" 2>&1 | tee -a "$DEST/train.log"
cp "$RUN/model.safetensors" "$RUN/config.json" "$DEST/"
echo "weights in $DEST"
