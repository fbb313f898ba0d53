#!/bin/bash
# Every model kind on the ogle preset and on the injection sets, one budget: 2,388 training events,
# 2 epochs of 32 (150 steps; the models study's sizes and budget), seed 13, physical labels;
# masked kinds pretrain 2 epochs first. Injection models cross-fitted by star (fold k's model
# scores the other fold's stars); every benchmark on trailing 605.25-day windows, peer none.
# Then the transformer at 8 epochs. Touch /tmp/rb_pause to hold between steps.
BENCH_WORKERS=2 source "$(dirname "$0")/common.sh"
# Pipeline C: the fitted-noise arm (features kind and the peer)
step train_features_oglefit $PY -m microlens.training.train --kind features --dataset data/rb/ogle_fitted \
  --run-name features_oglefit --runs-dir $R --seed 13 --overwrite --quiet
step eval_features_oglefit $PY $S/eval_test.py $R/features_oglefit
step bench_features_oglefit $PY -m microlens.realdata.benchmark $F --run $R/features_oglefit --peer none \
  --window-days 605.25 --workers 2 --device cpu --stars $E/stars_not_shipped.json \
  --out $E/all/bench_features_oglefit.json
step tune_peer_oglefit $PY $S/tune_peer_oglefit.py
step bench_oglefit_peer $PY -m microlens.realdata.benchmark $F --peer $E/all/peer_oglefit.json \
  --stars $E/stars_not_shipped.json --window-days 605.25 --workers 2 \
  --out $E/all/bench_oglefit_peer.json
echo "$(date +%T) pipeline C finished" >> $E/allkinds.log
