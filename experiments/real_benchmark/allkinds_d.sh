#!/bin/bash
# Every model kind on the ogle preset and on the injection sets, one budget: 2,388 training events,
# 2 epochs of 32 (150 steps; the models study's sizes and budget), seed 13, physical labels;
# masked kinds pretrain 2 epochs first. Injection models cross-fitted by star (fold k's model
# scores the other fold's stars); every benchmark on trailing 605.25-day windows, peer none.
# Then the transformer at 8 epochs. Touch /tmp/rb_pause to hold between steps.
source "$(dirname "$0")/common.sh"
# The four ogle-preset cells left: two pipelines, one thread each
case $1 in
  a) for k in cnn gru; do train $k ogle_synth ${k}_ogle 2; bench ${k}_ogle; done;;
  b) for k in masked rnn_vae; do train $k ogle_synth ${k}_ogle 2; bench ${k}_ogle; done;;
esac
echo "$(date +%T) pipeline d-$1 finished" >> $E/allkinds.log
