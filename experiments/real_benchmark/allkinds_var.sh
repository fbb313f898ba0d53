#!/bin/bash
# The features kind on injection sets whose class 0 also holds simulated variables (a share of
# the no-event windows, the survey's contaminant mix): each fold generated, trained, scored on
# the dev folder's stars with the peer tuned on the same set (its statistics in the record, for
# the gate), and on its test split. Arguments: the fold (0 or 1) and the share (default 0.5).
source "$(dirname "$0")/common.sh"
k=$1; share=${2:-0.5}
v=var; [ "$share" != 0.5 ] && v=var$(python3 -c "print(round($share * 100))")
step gen_inj_${v}$k $PY $S/gen_inj_var.py $k $share
step train_features_${v}$k $PY -m microlens.training.train --kind features \
  --dataset data/rb/inj_${v}_fold$k --run-name features_${v}$k --runs-dir $R --seed 13 \
  --overwrite --quiet
step eval_features_${v}$k $PY $S/eval_test.py $R/features_${v}$k
step bench_features_${v}$k $PY -m microlens.realdata.benchmark $F --run $R/features_${v}$k \
  --peer tune --window-days 605.25 --workers 1 --device cpu --stars $E/bench_stars_fold$k.json \
  --out $E/all/bench_features_${v}$k.json
echo "$(date +%T) pipeline ${v}$k finished" >> $E/allkinds.log
