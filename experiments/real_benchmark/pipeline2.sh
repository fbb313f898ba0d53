#!/bin/bash
# After pipeline.sh: each run's accuracy and detectable-binary recall on its own test split.
cd "$(dirname "$0")/../.."
E=outputs/experiments/real_benchmark
S=experiments/real_benchmark  # the scripts (records go to $E)
while pgrep -f "real_benchmark/pipeline.sh" > /dev/null; do sleep 5; done
for r in tf_inj0 tf_inj1 tf_ogle ft_inj0 ft_inj1 ft_ogle; do
  s=$(date +%s); echo "$(date +%T) start eval_$r" >> $E/pipeline.log
  .venv/bin/python $S/eval_test.py outputs/runs/rb/$r > $E/eval_$r.log 2>&1
  echo "$(date +%T) done eval_$r rc=$? wall=$(( $(date +%s) - s ))s" >> $E/pipeline.log
done
