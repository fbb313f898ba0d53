#!/bin/bash
# The transformer trained the same way as the recommended model: on the injection sets with
# simulated variables in half of class 0 (made by allkinds_var.sh), the all-kinds budget (2
# epochs of 32), each fold scored on the other fold's stars with the peer tuned on its set.
source "$(dirname "$0")/common.sh"
for k in 0 1; do
  train transformer inj_var_fold$k transformer_var$k 2
  step bench_transformer_var$k $PY -m microlens.realdata.benchmark $F --run $R/transformer_var$k \
    --peer tune --window-days 605.25 --workers 1 --device cpu \
    --stars $E/bench_stars_fold$k.json --out $E/all/bench_transformer_var$k.json
done
echo "$(date +%T) allkinds_var_tf finished" >> $E/allkinds.log
