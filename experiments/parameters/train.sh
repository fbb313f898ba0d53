#!/bin/bash
# The parameter study's two transformers, the real-sky recipe's settings (docs/results.md, "The
# recommended model"), identical but for the parameter heads: same data, seed and schedule, so
# that classification with and without the heads can be compared event by event.
#   experiments/parameters/train.sh        # after experiments/parameters/simulate.py
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
R=outputs/runs/parameters
mkdir -p outputs/experiments/parameters
for name in heads plain; do
  heads=parameter-heads; [ $name = plain ] && heads=no-parameter-heads  # heads: parameter_weight 1.0
  .venv/bin/python -m microlens.training.train --dataset data/parameters/train_injected \
    --run-name transformer_$name --runs-dir $R --kind transformer \
    --d-model 64 --n-layers 2 --n-heads 4 --d-ff 128 --dropout 0 --epochs ${EPOCHS:-3} \
    --batch-size 32 --learning-rate 0.002 --seed 13 --device cpu --label-policy physical \
    --$heads --overwrite --quiet > outputs/experiments/parameters/train_$name.log 2>&1 &
done
wait
