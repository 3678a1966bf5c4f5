#!/usr/bin/env bash
# Grid inference rehearsed on this machine (docs/grid.md): one input split over SHARDS jobs of
# `lartpcnet predict --shard K/N` that know nothing of each other, run in the background as a
# grid runs them, then put back together with `lartpcnet merge` into DIR/predictions.h5, the
# file that one unsharded `lartpcnet predict` writes.
#
#   scripts/grid_local.sh [DIR]      # default DIR: out/grid_local
#
# Settings (environment):
#   MODEL     shipped name or .pt checkpoint (default sparsessnet_uboone)
#   INPUT     the file to run on (default: EVENTS events of SAMPLE simulated with SEED into DIR/input.h5)
#   SAMPLE, EVENTS, SEED   default particle_bomb, 12, 1
#   SHARDS    jobs (default 3)
#   PARALLEL  1: the jobs at once, one thread each (default); 0: one after the other
#   LARTPCNET the command (default: .venv/bin/lartpcnet of this checkout)
#
# Running it again resumes, as a grid job restarted after a kill does: a finished shard is kept,
# a killed one carries on from its finished parts (DIR/shard-K-of-N.h5.parts).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-out/grid_local}
lartpcnet=${LARTPCNET:-$root/.venv/bin/lartpcnet}
model=${MODEL:-sparsessnet_uboone}
shards=${SHARDS:-3}
input=${INPUT:-$dir/input.h5}
mkdir -p "$dir/logs"

if [[ -z ${INPUT:-} && ! -e $input ]]; then
  "$lartpcnet" simulate --sample "${SAMPLE:-particle_bomb}" --events "${EVENTS:-12}" --seed "${SEED:-1}" \
    --out "$input" --no-progress
fi

# each job exactly as a grid job runs it: its own output, its own log, no knowledge of the others
pids=() logs=()
for ((k = 0; k < shards; k++)); do
  out=$dir/shard-$k-of-$shards.h5
  [[ -e $out ]] && continue  # finished in an earlier run
  log=$dir/logs/shard-$k-of-$shards.log
  job=("$lartpcnet" predict --model "$model" --in "$input" --out "$out" --shard "$k/$shards" --no-progress)
  if [[ ${PARALLEL:-1} == 1 ]]; then
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "${job[@]}" >"$log" 2>&1 &
    pids+=("$!") logs+=("$log")
  elif ! "${job[@]}" >"$log" 2>&1; then
    echo "shard $k/$shards failed:" >&2 && tail -n 5 "$log" >&2 && exit 1
  fi
done
failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "${logs[$i]}:" >&2 && tail -n 5 "${logs[$i]}" >&2
    failed=1
  fi
done
((failed == 0)) || { echo "a shard failed; run this again to resume it" >&2; exit 1; }

# the merge checks that the shards are of one job and hold every event once, then writes one file
files=()
for ((k = 0; k < shards; k++)); do files+=("$dir/shard-$k-of-$shards.h5"); done
"$lartpcnet" merge "$dir/predictions.h5" "${files[@]}" --overwrite
