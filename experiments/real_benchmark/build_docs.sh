#!/bin/bash
# docs/results.md = the sections before + "The real benchmark" (head, the table from report.py, tail)
cd "$(dirname "$0")/../.."; E=outputs/experiments/real_benchmark; S=experiments/real_benchmark
.venv/bin/python $S/report.py > $E/report_all.log 2>&1 || exit 1
{ cat $E/results_before.md; cat $E/section_head.md; grep "^|" $E/report_all.log; cat $E/section_tail.md; } > docs/results.md.tmp && mv docs/results.md.tmp docs/results.md
