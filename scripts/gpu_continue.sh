#!/usr/bin/env bash
# Continues the background training runs on a lent GPU for a fixed wall-time budget and brings
# back what shipping needs: one call of the device tool (see README, "Training").
#
#   scripts/gpu_continue.sh OUT [SECONDS]     # default 540 s, shared among the recipes
#
# - Starts each recipe from the shipped weights (--init-from; a CPU run's checkpoints, ~200 MB
#   with the optimizer state, do not fit in what travels to the device) or resumes a run already
#   in OUT/runs/NAME. The paper's batch sizes, bf16 autocast, 12 simulating workers.
# - Each run is killed at its deadline: checkpoints are atomic, so what finished is kept.
# - Back in OUT: per recipe NAME_validation.jsonl, NAME_log.csv and the fp16 export of the run's
#   best validation checkpoint, split into NAME.pt.part-* of 15 MB (the device returns files of
#   at most 16 MiB): `cat NAME.pt.part-* > NAME.pt`, then scripts/choose_checkpoint.py's rule on
#   CPU decides whether it replaces the shipped weights.
#
# Settings by environment: RECIPES (default "cosmictagger_sbnd uresnet3d_pilarnet"), DEVICE
# (default cuda; cpu to rehearse), WORKERS (12), EXTRA (more train flags, e.g. "--set batch_size=1").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_continue.sh OUT [SECONDS]}
seconds=${2:-540}
python=${PYTHON:-.venv/bin/python}
read -r -a recipes <<< "${RECIPES:-cosmictagger_sbnd uresnet3d_pilarnet}"
read -r -a extra <<< "${EXTRA:-}"
workers=${WORKERS:-12}
per=$(( seconds / ${#recipes[@]} ))
mkdir -p "$out/runs"
for name in "${recipes[@]}"; do
  case $name in
    cosmictagger_sbnd)
      metric=mean_iou
      settings=(--set batch_size=16 --set validate_every=250 --set checkpoint_every=250
                --set data.validation.events=32) ;;
    uresnet3d_pilarnet)
      metric=nonzero_accuracy
      settings=(--set batch_size=16 --set optimizer.lr=0.0001 --set 'data.train.mix={pilarnet3d: 1, michel: 2}'
                --set data.train.sample=null --set validate_every=250 --set checkpoint_every=250) ;;
    *) echo "gpu_continue.sh: no recipe for $name" >&2; exit 2 ;;
  esac
  run=$out/runs/$name
  echo "$(date '+%F %T') $name: training for $per s on ${DEVICE:-cuda}"
  code=0
  timeout --signal=KILL "$per" "$python" -m lartpcnet.cli train "configs/$name.yaml" --out "$run" --resume \
      --init-from "$name" --no-progress --set device="${DEVICE:-cuda}" --set amp=true --set data.workers="$workers" \
      "${settings[@]}" "${extra[@]}" > "$out/${name}_train.log" 2>&1 || code=$?
  if (( code != 0 && code != 137 )); then  # 137: killed at the deadline, as planned
    tail -20 "$out/${name}_train.log" >&2
    echo "$name: training failed (exit $code)" >&2
    exit 1
  fi
  cp "$run/validation.jsonl" "$out/${name}_validation.jsonl" 2>/dev/null || true
  cp "$run/log.csv" "$out/${name}_log.csv" 2>/dev/null || true
  best=$("$python" - "$run" "$metric" <<'EOF'
import json, sys
from pathlib import Path
run, metric = Path(sys.argv[1]), sys.argv[2]
saved = {int(p.stem.split("-")[1]): p for p in (run / "checkpoints").glob("ckpt-*.pt")}
lines = (run / "validation.jsonl").read_text().splitlines() if (run / "validation.jsonl").exists() else []
scored = [json.loads(line) for line in lines if line.strip()]
scored = [v for v in scored if v["iteration"] in saved and v.get(metric) is not None]
if scored:
    print(saved[max(scored, key=lambda v: v[metric])["iteration"]])
elif saved:
    print(saved[max(saved)])
EOF
)
  if [[ -z $best ]]; then
    echo "$name: no checkpoint was written in $per s" >&2
    exit 1
  fi
  "$python" scripts/export_weights.py "$best" --out "$out/$name.pt"
  split -b 15M -d "$out/$name.pt" "$out/$name.pt.part-"
  rm "$out/$name.pt"
  echo "$(date '+%F %T') $name: best validation checkpoint $(basename "$best"), exported in $(ls "$out/$name.pt.part-"* | wc -l) parts"
done
rm -rf "$out/runs"  # the full checkpoints stay behind: only the exports travel back
