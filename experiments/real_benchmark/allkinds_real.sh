#!/bin/bash
# Every model kind on the ogle preset and on the injection sets, one budget: 2,388 training events,
# 2 epochs of 32 (150 steps; the models study's sizes and budget), seed 13, physical labels;
# masked kinds pretrain 2 epochs first. Injection models cross-fitted by star (fold k's model
# scores the other fold's stars); every benchmark on trailing 605.25-day windows, peer none.
# Then the transformer at 8 epochs. Touch /tmp/rb_pause to hold between steps.
source "$(dirname "$0")/common.sh"
# The realistic ogle preset (fitted noise, physical single lenses, survey contaminants): the
# features kind, the transformer and the peer; scored on the 786 dev events whose stars the
# noise model never saw, with the peer's statistics for the gate.
step gen_real $PY $S/gen_real.py
step tune_peer_real $PY $S/tune_peer_real.py
step train_features_real $PY -m microlens.training.train --kind features --dataset data/rb/ogle_real \
  --run-name features_real --runs-dir $R --seed 13 --overwrite --quiet
step eval_features_real $PY $S/eval_test.py $R/features_real
step bench_features_real $PY -m microlens.realdata.benchmark $F --run $R/features_real \
  --peer $E/all/peer_ogle_real.json --window-days 605.25 --workers 1 --device cpu \
  --stars $E/stars_not_shipped.json --out $E/all/bench_features_real.json
train transformer ogle_real transformer_real 2
step bench2_transformer_real $PY -m microlens.realdata.benchmark $F --run $R/transformer_real \
  --peer $E/all/peer_ogle_real.json --window-days 605.25 --workers 1 --device cpu \
  --stars $E/stars_not_shipped.json --out $E/all/bench_transformer_real.json
echo "$(date +%T) pipeline real finished" >> $E/allkinds.log
