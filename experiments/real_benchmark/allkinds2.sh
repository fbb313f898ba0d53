#!/bin/bash
# Every model kind on the ogle preset and on the injection sets, one budget: 2,388 training events,
# 2 epochs of 32 (150 steps; the models study's sizes and budget), seed 13, physical labels;
# masked kinds pretrain 2 epochs first. Injection models cross-fitted by star (fold k's model
# scores the other fold's stars); every benchmark on trailing 605.25-day windows, peer none.
# Then the transformer at 8 epochs. Touch /tmp/rb_pause to hold between steps.
BENCH_WORKERS=2 source "$(dirname "$0")/common.sh"
# Order for the time left: every kind on injection, the transformer at 8 epochs, the features
# kind's ogle benchmark, then the ogle arm cheapest first (gru and rnn_vae last: 12 and 20 min
# an epoch of the ogle preset on 2 cores).
KINDS="transformer cnn gru rnn_vae deepsets set_transformer masked"
for k in $KINDS; do for f in 0 1; do
  train $k inj_fold$f ${k}_inj$f 2
  bench ${k}_inj$f --stars $E/bench_stars_fold$f.json
done; done
for f in 0 1; do
  train transformer inj_fold$f transformer8_inj$f 8
  bench transformer8_inj$f --stars $E/bench_stars_fold$f.json
done
for n in ft_inj0 ft_inj1 ft_ogle_full; do step eval_$n $PY $S/eval_test.py outputs/runs/rb/$n; done
step bench_features_ogle $PY -m microlens.realdata.benchmark $F --run outputs/runs/rb/ft_ogle_full --peer none \
  --window-days 605.25 --workers 2 --device cpu --out $E/all/bench_features_ogle.json
for k in transformer set_transformer cnn; do
  train $k ogle_synth ${k}_ogle 2
  bench ${k}_ogle
done
# The ogle preset with the noise fitted on the shipped subset's stars (data/rb/ogle_fitted, the
# same config otherwise): features and transformer, scored on the stars not in the subset.
step train_features_oglefit $PY -m microlens.training.train --kind features --dataset data/rb/ogle_fitted \
  --run-name features_oglefit --runs-dir $R --seed 13 --overwrite --quiet
step eval_features_oglefit $PY $S/eval_test.py $R/features_oglefit
bench features_oglefit --stars $E/stars_not_shipped.json
train transformer ogle_fitted transformer_oglefit 2
bench transformer_oglefit --stars $E/stars_not_shipped.json
for k in masked deepsets gru rnn_vae; do
  train $k ogle_synth ${k}_ogle 2
  bench ${k}_ogle
done
echo "$(date +%T) allkinds2 finished" >> $E/allkinds.log
