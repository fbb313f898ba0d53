#!/bin/bash
# Everything after the first transformer, one heavy job at a time; each step's log and wall time.
cd "$(dirname "$0")/../.."
E=outputs/experiments/real_benchmark
S=experiments/real_benchmark  # the scripts (records go to $E)
F=../shared/real/ogle_ews_2025
step() {  # name, command...
  local name=$1; shift
  local s=$(date +%s)
  echo "$(date +%T) start $name" >> $E/pipeline.log
  "$@" > $E/$name.log 2>&1
  echo "$(date +%T) done $name rc=$? wall=$(( $(date +%s) - s ))s" >> $E/pipeline.log
}
# normalization from 300 events (setup time); tf_ogle on a subset of its training split (budget)
step train_tf_inj0 $E/train_tf.sh inj_fold0 tf_inj0 1 --max-train-events 960 --max-val-events 150 --normalization-events 500
step train_tf_inj1 $E/train_tf.sh inj_fold1 tf_inj1 1 --max-train-events 960 --max-val-events 150 --normalization-events 500
step train_tf_ogle $E/train_tf.sh ogle_synth tf_ogle 1 --max-train-events 320 --max-val-events 150 --normalization-events 300
for k in 0 1; do
  step bench_tf_inj$k .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/tf_inj$k \
    --stars $E/bench_stars_fold$k.json --workers 2 --device cpu --out $E/bench_tf_inj$k.json
done
step bench_tf_ogle .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/tf_ogle \
    --workers 2 --device cpu --out $E/bench_tf_ogle.json
for k in 0 1; do
  step train_ft_inj$k .venv/bin/python -m microlens.training.train --kind features --dataset data/rb/inj_fold$k \
    --run-name ft_inj$k --runs-dir outputs/runs/rb --seed 13 --overwrite
done
step train_ft_ogle .venv/bin/python -m microlens.training.train --kind features --dataset data/rb/ogle_synth \
    --run-name ft_ogle --runs-dir outputs/runs/rb --seed 13 --overwrite
for k in 0 1; do
  step bench_ft_inj$k .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/ft_inj$k \
    --peer none --stars $E/bench_stars_fold$k.json --workers 2 --device cpu --out $E/bench_ft_inj$k.json
done
step bench_ft_ogle .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/ft_ogle \
    --peer none --workers 2 --device cpu --out $E/bench_ft_ogle.json
echo "$(date +%T) pipeline finished" >> $E/pipeline.log
