#!/bin/bash
# Round 2: float64 answers ranked by log-odds; whole segments vs a trailing 605.25-day window (the ogle preset's span)
cd "$(dirname "$0")/../.."
E=outputs/experiments/real_benchmark
S=experiments/real_benchmark  # the scripts (records go to $E)
F=../shared/real/ogle_ews_2025
step() {
  local name=$1; shift
  local s=$(date +%s)
  echo "$(date +%T) start $name" >> $E/round2.log
  "$@" > $E/$name.log 2>&1
  echo "$(date +%T) done $name rc=$? wall=$(( $(date +%s) - s ))s" >> $E/round2.log
}
for k in 0 1; do
  step r2_tf_inj${k}_win .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/tf_inj$k \
    --peer none --stars $E/bench_stars_fold$k.json --window-days 605.25 --workers 2 --device cpu --out $E/r2_tf_inj${k}_win.json
done
for k in 0 1; do
  step r2_tf_inj${k} .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/tf_inj$k \
    --peer none --stars $E/bench_stars_fold$k.json --workers 2 --device cpu --out $E/r2_tf_inj${k}.json
done
for k in 0 1; do
  step r2_ft_inj${k}_win .venv/bin/python -m microlens.realdata.benchmark $F --run outputs/runs/rb/ft_inj$k \
    --peer none --stars $E/bench_stars_fold$k.json --window-days 605.25 --workers 2 --device cpu --out $E/r2_ft_inj${k}_win.json
done
echo "$(date +%T) round2 finished" >> $E/round2.log
