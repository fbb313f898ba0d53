#!/bin/bash
# The features kind on injection sets whose class 0 also holds simulated variables (half of the
# no-event windows, the survey's contaminant mix): each fold generated, trained, scored on the
# dev folder's stars with the peer tuned on the same set (its statistics in the record, for the
# gate), and on its test split. Argument: the fold (0 or 1).
source "$(dirname "$0")/common.sh"
k=$1
step gen_inj_var$k $PY $S/gen_inj_var.py $k
step train_features_var$k $PY -m microlens.train --kind features --dataset data/rb/inj_var_fold$k \
  --run-name features_var$k --runs-dir $R --seed 13 --overwrite --quiet
step eval_features_var$k $PY $S/eval_test.py $R/features_var$k
step bench_features_var$k $PY -m microlens.real_benchmark $F --run $R/features_var$k --peer tune \
  --window-days 605.25 --workers 1 --device cpu --stars $E/bench_stars_fold$k.json \
  --out $E/all/bench_features_var$k.json
echo "$(date +%T) pipeline var$k finished" >> $E/allkinds.log
