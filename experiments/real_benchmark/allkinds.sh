#!/bin/bash
# Every model kind on the ogle preset and on the injection sets, one budget: 2,388 training events,
# 2 epochs of 32 (150 steps; the models study's sizes and budget), seed 13, physical labels;
# masked kinds pretrain 2 epochs first. Injection models cross-fitted by star (fold k's model
# scores the other fold's stars); every benchmark on trailing 605.25-day windows, peer none.
# Then the transformer at 8 epochs. Touch /tmp/rb_pause to hold between steps.
BENCH_WORKERS=2 source "$(dirname "$0")/common.sh"
KINDS="transformer cnn gru rnn_vae deepsets set_transformer masked"
for k in $KINDS; do for f in 0 1; do
  train $k inj_fold$f ${k}_inj$f 2
  bench ${k}_inj$f --stars $E/bench_stars_fold$f.json
done; done
step bench_features_ogle $PY -m microlens.realdata.benchmark $F --run outputs/runs/rb/ft_ogle_full --peer none \
  --window-days 605.25 --workers 2 --device cpu --out $E/all/bench_features_ogle.json
for k in transformer cnn set_transformer masked deepsets gru rnn_vae; do
  train $k ogle_synth ${k}_ogle 2
  bench ${k}_ogle
done
for f in 0 1; do
  train transformer inj_fold$f transformer8_inj$f 8
  bench transformer8_inj$f --stars $E/bench_stars_fold$f.json
done
echo "$(date +%T) allkinds finished" >> $E/allkinds.log
