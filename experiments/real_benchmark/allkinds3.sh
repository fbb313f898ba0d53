#!/bin/bash
# After allkinds2: the classical peer tuned on the fitted-noise ogle set.
# 2 epochs of 32 (150 steps; the models study's sizes and budget), seed 13, physical labels;
# masked kinds pretrain 2 epochs first. Injection models cross-fitted by star (fold k's model
# scores the other fold's stars); every benchmark on trailing 605.25-day windows, peer none.
# Then the transformer at 8 epochs. Touch /tmp/rb_pause to hold between steps.
BENCH_WORKERS=2 source "$(dirname "$0")/common.sh"
while [ ! -e $E/all/bench_transformer_oglefit.done ]; do sleep 20; done
step bench_oglefit_peer $PY -m microlens.realdata.benchmark $F --run $R/transformer_oglefit --peer tune \
  --stars $E/stars_not_shipped.json --window-days 605.25 --workers 2 --device cpu \
  --out $E/all/bench_oglefit_peer.json
step eval_peer_oglefit $PY $S/eval_peer.py data/rb/ogle_fitted $E/all/bench_oglefit_peer.json
echo "$(date +%T) allkinds3 finished" >> $E/allkinds.log
