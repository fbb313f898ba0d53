#!/bin/bash
# The rest, reordered so the injection results come first; ft_ogle on a subset of its training split (budget).
cd "$(dirname "$0")/../.."
E=outputs/experiments/real_benchmark
S=experiments/real_benchmark  # the scripts (records go to $E)
F=../shared/real/ogle_ews_2025
step() {
  local name=$1; shift
  local s=$(date +%s)
  echo "$(date +%T) start $name" >> $E/pipeline.log
  "$@" > $E/$name.log 2>&1
  echo "$(date +%T) done $name rc=$? wall=$(( $(date +%s) - s ))s" >> $E/pipeline.log
}
while pgrep -f "run-name ft_inj0 " > /dev/null; do sleep 5; done
echo "$(date +%T) done train_ft_inj0 (pipeline3 takes over)" >> $E/pipeline.log
step train_ft_inj1 .venv/bin/python -m microlens.training.train --kind features --dataset data/rb/inj_fold1 \
    --run-name ft_inj1 --runs-dir outputs/runs/rb --seed 13 --overwrite
for k in 0 1; do
  step bench_ft_inj$k .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/ft_inj$k \
    --peer none --stars $E/bench_stars_fold$k.json --workers 2 --device cpu --out $E/bench_ft_inj$k.json
done
for r in tf_inj0 tf_inj1 ft_inj0 ft_inj1 tf_ogle; do
  step eval_$r .venv/bin/python $S/eval_test.py outputs/runs/rb/$r
done
step train_ft_ogle .venv/bin/python -m microlens.training.train --kind features --dataset data/rb/ogle_synth \
    --run-name ft_ogle --runs-dir outputs/runs/rb --seed 13 --overwrite --max-train-events 600 --max-val-events 150
step bench_ft_ogle .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/ft_ogle \
    --peer none --workers 2 --device cpu --out $E/bench_ft_ogle.json
step eval_ft_ogle .venv/bin/python $S/eval_test.py outputs/runs/rb/ft_ogle
echo "$(date +%T) pipeline3 finished" >> $E/pipeline.log
