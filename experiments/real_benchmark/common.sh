# The steps every allkinds*.sh pipeline shares (sourced): paths, one thread per process, and
# step/train/bench, each run once (a .done marker in $E/all) and held while /tmp/rb_pause exists.
cd "$(dirname "$0")/../.."
E=outputs/experiments/real_benchmark; F=../shared/real/ogle_ews_2025; R=outputs/runs/rb/all
S=experiments/real_benchmark  # the scripts (records go to $E)
PY=.venv/bin/python
# one thread per process: on a shared 2-core machine two OpenMP threads made the GRU ~7x slower
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
step() {
  local name=$1; shift
  while [ -e /tmp/rb_pause ]; do sleep 5; done
  if [ -e $E/all/$name.done ]; then return; fi
  local s=$(date +%s)
  echo "$(date +%T) start $name" >> $E/allkinds.log
  "$@" > $E/all/$name.log 2>&1; local rc=$?
  echo "$(date +%T) done $name rc=$rc wall=$(( $(date +%s) - s ))s" >> $E/allkinds.log
  [ $rc = 0 ] && touch $E/all/$name.done
}
args_for() { case $1 in
  transformer|masked) echo "--d-model 64 --n-layers 2 --n-heads 4 --d-ff 128";;
  cnn) echo "--d-model 64 --n-layers 6 --kernel-size 5 --n-heads 4 --d-ff 128";;
  gru) echo "--d-model 80 --n-layers 2 --n-heads 4 --d-ff 128";;
  rnn_vae) echo "--d-model 48 --latent-dim 16 --n-layers 2 --n-heads 4 --d-ff 128";;
  deepsets) echo "--d-model 64 --n-layers 2 --n-heads 4 --d-ff 128 --window 16";;
  set_transformer) echo "--window 8 --n-layers 1 --d-model 32 --d-ff 64 --n-heads 2";;
esac; }
train() {  # kind dataset name epochs
  local k=$1 ds=$2 name=$3 ep=$4 extra=""
  if [ $k = masked ]; then
    step pre_$name $PY -m microlens.training.train --objective pretrain --dataset data/rb/$ds --run-name pre_$name \
      --runs-dir $R $(args_for $k) --dropout 0 --epochs 2 --batch-size 32 --seed 13 --device cpu \
      --max-train-events 2388 --overwrite --quiet
    extra="--pretrained $R/pre_$name"
  fi
  step train_$name $PY -m microlens.training.train --dataset data/rb/$ds --run-name $name --runs-dir $R \
    --kind $k $(args_for $k) --dropout 0 --epochs $ep --batch-size 32 --learning-rate 0.002 \
    --seed 13 --device cpu --max-train-events 2388 --label-policy physical --overwrite --quiet $extra
  step eval_$name $PY $S/eval_test.py $R/$name
}
bench() {  # name stars-args
  local name=$1; shift
  step bench_$name $PY -m microlens.realdata.benchmark $F --run $R/$name --peer none --window-days 605.25 \
    --workers ${BENCH_WORKERS:-1} --device cpu --out $E/all/bench_$name.json "$@"
}
mkdir -p $E/all
