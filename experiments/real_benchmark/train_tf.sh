#!/bin/bash
# transformer (d_model 64, 2 layers, 4 heads, d_ff 128, dropout 0) on data set $1, run name $2, epochs $3, extra args after
cd "$(dirname "$0")/../.."
ds=$1; name=$2; ep=$3; shift 3
start=$(date +%s)
.venv/bin/python -m microlens.training.train --dataset data/rb/$ds --run-name $name --runs-dir outputs/runs/rb \
  --kind transformer --d-model 64 --n-layers 2 --n-heads 4 --d-ff 128 --dropout 0 \
  --epochs $ep --batch-size 32 --learning-rate 0.002 --seed 13 --device cpu --overwrite "$@"
echo "wall seconds $(( $(date +%s) - start ))"
