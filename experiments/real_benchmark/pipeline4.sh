#!/bin/bash
# After pipeline3: the peer on the injection test splits; the features kind on the whole ogle training split.
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
while pgrep -f "real_benchmark/pipeline3.sh" > /dev/null; do sleep 3; done
for k in 0 1; do step eval_peer_inj$k .venv/bin/python $S/eval_peer.py data/rb/inj_fold$k $E/bench_tf_inj$k.json; done
step train_ft_ogle_full .venv/bin/python -m microlens.training.train --kind features --dataset data/rb/ogle_synth \
    --run-name ft_ogle_full --runs-dir outputs/runs/rb --seed 13 --overwrite
step bench_ft_ogle_full .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/ft_ogle_full \
    --peer none --workers 2 --device cpu --out $E/bench_ft_ogle_full.json
step eval_ft_ogle_full .venv/bin/python $S/eval_test.py outputs/runs/rb/ft_ogle_full
step eval_peer_ogle .venv/bin/python $S/eval_peer.py data/rb/ogle_synth $E/bench_tf_ogle.json
echo "$(date +%T) pipeline4 finished" >> $E/pipeline.log
