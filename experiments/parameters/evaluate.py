"""The parameter study's measurements: the transformer's parameter heads beside the online
point-lens fit on the star-disjoint injection test set, and classification with and without
the heads, paired on the same test events.

    python experiments/parameters/evaluate.py   # after simulate.py and train.sh

Writes ``outputs/experiments/parameters/record.json`` (the record every figure of
``notebooks/09_parameters.ipynb`` is rebuilt from) and ``paired.json``; prints the tables.
"""

import json
import os
import sys

from microlens.core.paths import write_json_atomic
from microlens.evaluation.parameters import evaluate_parameters
from microlens.reports.parameters import parameter_table
from microlens.workflow.learning_curve import paired_difference

RUNS = "outputs/runs/parameters"
TEST = "data/parameters/test_injected"
OUT = "outputs/experiments/parameters"
WORKERS = int(os.environ.get("WORKERS", 2))

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    record_path = f"{OUT}/record.json"
    if not os.path.exists(record_path) or "--again" in sys.argv:
        record = evaluate_parameters(f"{RUNS}/transformer_heads", TEST, workers=WORKERS,
                                     progress=True)
        write_json_atomic(record_path, record)
    record = json.load(open(record_path))
    print(parameter_table(record))
    paired = paired_difference(f"{RUNS}/transformer_heads", f"{RUNS}/transformer_plain",
                               dataset=TEST)
    write_json_atomic(f"{OUT}/paired.json", paired)
    print("classification, heads minus plain:", json.dumps(paired))
