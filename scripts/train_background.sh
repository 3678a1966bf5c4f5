#!/usr/bin/env bash
# A resumable, low-priority training job: starting it again after a stop, a kill or a reboot
# is a resume.
#
#   scripts/train_background.sh NAME        # cosmictagger_sbnd, uresnet3d_pilarnet, sparsessnet_uboone
#                                           # or smaskrcnn_uboone
#   scripts/train_background.sh NAME --stop # ends the job (it resumes where it was next time)
#
# - Runs under `nice -n 19` with one thread (its scheduler autogroup niced too), so it takes only
#   what other work leaves idle. LARTPCNET_BACKGROUND_THREADS=N gives it N threads.
# - Trains from a pre-simulated file (made first, also at low priority, with one worker), so
#   simulation never takes the core that training needs. Its size keeps any event from being
#   seen twice within several hours (the config's batch size and the measured s/iteration).
# - Resumes from the newest checkpoint in the run folder that loads. With no checkpoint there,
#   it starts from the shipped weights, at their iteration; their optimizer state is not
#   shipped, so the optimizer starts anew (the run's changes.log says so).
# - One status line, updated every iteration: $RUN/status.txt. The whole log: $RUN/background.log.
#
# Grid and cluster jobs run the same way: a job that resumes (see README, "Training").
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/train_background.sh NAME [--stop]}
runs=${LARTPCNET_RUNS:-runs}
run=$runs/${name}_background
python=${PYTHON:-.venv/bin/python}

init=(--init-from "$name")
case $name in
  cosmictagger_sbnd)
    # batch 4 at 50 % resolution, bf16 autocast on CPU; 12,000 events is about 4 h of training
    sample=sbnd_cosmic events=12000
    settings=(--set batch_size=4 --set amp=true --set data.validation.events=32
              --set validate_every=250 --set checkpoint_every=250) ;;
  sparsessnet_uboone)
    # the collection plane, bf16 autocast, from the shipped weights; 6,000 events is about 2 h of
    # training at 2 threads (each event seen about twice an hour)
    # class-balanced (power 0.5): HIP, 3 % of the pixels on the new labels, was learned slowly
    sample=particle_bomb events=6000
    settings=(--set amp=true --set validate_every=500 --set checkpoint_every=250
              --set model.loss.weighting=class_balanced --set model.loss.balance_power=0.5) ;;
  smaskrcnn_uboone)
    # the config's lighter CPU network, one full Y plane per iteration, from scratch (no weights ship
    # yet, and the paper's ImageNet start is not available); 3,000 events is about 4 h of training
    sample=uboone_smrcnn_nue events=3000 init=()
    settings=(--set data.validation.events=16 --set validate_every=500 --set checkpoint_every=250) ;;
  uresnet3d_pilarnet)
    # the shipped weights' last phase: pilarnet3d with stopping muons twice as often, lr 1e-4
    sample=pilarnet3d events=0
    settings=(--set amp=true --set optimizer.lr=0.0001 --set 'data.train.mix={pilarnet3d: 1, michel: 2}'
              --set data.train.sample=null --set validate_every=500 --set checkpoint_every=250) ;;
  *) echo "train_background.sh: no background recipe for $name (cosmictagger_sbnd, uresnet3d_pilarnet," \
          "sparsessnet_uboone, smaskrcnn_uboone)" >&2
     exit 2 ;;
esac

mkdir -p "$run"
if [[ ${2:-} == --stop ]]; then
  [[ -f $run/pid ]] && kill -- "-$(cat "$run/pid")" 2>/dev/null && echo "stopped $name" || echo "$name is not running"
  exit 0
fi
if [[ -f $run/pid ]] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
  echo "$name is already running (pid $(cat "$run/pid")): $(cat "$run/status.txt" 2>/dev/null)"
  exit 0
fi

threads=${LARTPCNET_BACKGROUND_THREADS:-1}  # more where the machine has idle cores to give it
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
data=()
if (( events > 0 )); then
  file=$runs/data/${sample}_train_s101_${events}.h5
  data=(--set data.train.file="$file" --set data.train.sample=null --set data.workers=0)
fi
setsid bash -c '
  set -euo pipefail
  # setsid starts a new scheduler autogroup, and with autogroups (Linux default) nice only ranks
  # processes inside one group: the group itself must be niced too, or it gets an equal share
  # of the CPU with the interactive session
  [[ -w /proc/self/autogroup ]] && echo 19 > /proc/self/autogroup 2>/dev/null || true
  if [[ -n "${1:-}" && ! -f $1 ]]; then
    echo "$(date "+%F %T") simulating $3 events of $2 into $1 (resumable)"
    nice -n 19 '"$python"' -m lartpcnet.cli simulate --sample "$2" --events "$3" --seed 101 --out "$1" \
        --workers 1 --no-progress
  fi
  shift 3
  echo "$(date "+%F %T") training: $*"
  exec nice -n 19 '"$python"' -m lartpcnet.cli train "$@" --no-progress
' background "${file:-}" "$sample" "$events" "configs/$name.yaml" --out "$run" --resume "${init[@]}" \
  "${settings[@]}" "${data[@]}" >> "$run/background.log" 2>&1 < /dev/null &
echo $! > "$run/pid"
echo "started $name in the background (pid $!): tail -f $run/background.log; cat $run/status.txt"
