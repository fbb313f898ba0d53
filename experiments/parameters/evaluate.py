"""The parameter study's measurements, after ``simulate.py`` and ``train.sh``.

    python experiments/parameters/evaluate.py [STEP ...]   # default: every step

Steps (each writes one record under ``outputs/experiments/parameters``, skipped when it exists;
``RECORD_TAG=_anchor`` scores ``transformer_heads_anchor`` instead, its records suffixed):

``parameters``  the heads beside the online point-lens fit on the star-disjoint injection test
                set (``record.json``: the record notebook ``09_parameters`` rebuilds its figures
                from; ~7 min on 2 cores, the fits dominate)
``paired``      classification with and without the heads, paired on the same test events
                (``paired.json``: accuracy difference with a bootstrap interval, McNemar's test)
``classify``    both runs' test-split evaluation, the classical peer beside the heads' run
                (``evaluation_heads.json``, ``evaluation_plain.json``)
``real``        the heads on real EWS events against OGLE's fits, the run's training stars left
                out (``real.json``)
``benchmark``   both runs on the real benchmark (``benchmark_heads.json``,
                ``benchmark_plain.json``)
"""

import json
import os
import sys

from microlens.core.paths import write_json_atomic

RUNS = "outputs/runs/parameters"
TAG = os.environ.get("RECORD_TAG", "")  # another heads run: its records get this suffix
HEADS = f"{RUNS}/transformer_heads{TAG}"  # e.g. RECORD_TAG=_anchor: transformer_heads_anchor
PLAIN = f"{RUNS}/transformer_plain"
TEST = "data/parameters/test_injected"
FOLDER = "../shared/real/ogle_ews_2025"
OUT = "outputs/experiments/parameters"
WORKERS = int(os.environ.get("WORKERS", 2))


def parameters():
    from microlens.evaluation.parameters import evaluate_parameters

    return evaluate_parameters(HEADS, TEST, workers=WORKERS, progress=True,
                               fit_cache=f"{OUT}/online_fit.npz")


def paired():
    from microlens.workflow.learning_curve import paired_difference

    return paired_difference(HEADS, PLAIN, dataset=TEST)


def classify():
    from microlens.evaluation.evaluate import evaluate_run

    written = []
    for name, run, peer in (("heads", HEADS, True), ("plain", PLAIN, False)):
        path = f"{OUT}/evaluation_{name}{'' if name == 'plain' else TAG}.json"
        if TAG and os.path.exists(path):
            continue  # the plain run's evaluation is shared
        summary, _ = evaluate_run(run, TEST, peer=peer, peer_fractions=(1.0,), workers=WORKERS,
                                  progress=True)
        write_json_atomic(path, summary)
        written.append(os.path.basename(path))
    return {"written": written}


def real():
    from microlens.realdata.parameters import real_parameter_comparison

    return real_parameter_comparison(HEADS, FOLDER, workers=WORKERS, progress=True)


def benchmark():
    from microlens.realdata.benchmark import run_benchmark

    written = []
    for name, run in (("heads", HEADS), ("plain", PLAIN)):
        path = f"{OUT}/benchmark_{name}{'' if name == 'plain' else TAG}.json"
        if TAG and os.path.exists(path):
            continue
        record = run_benchmark(FOLDER, run, peer="none", window_days=605.25, workers=WORKERS)
        write_json_atomic(path, record)
        written.append(os.path.basename(path))
    return {"written": written}


STEPS = {"parameters": ("record.json", parameters), "paired": ("paired.json", paired),
         "classify": ("classify.json", classify), "real": ("real.json", real),
         "benchmark": ("benchmark.json", benchmark)}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for step in sys.argv[1:] or list(STEPS):
        file, work = STEPS[step]
        stem, extension = os.path.splitext(file)
        path = f"{OUT}/{stem}{TAG}{extension}"
        if not os.path.exists(path):
            write_json_atomic(path, work())
        print(step, json.dumps(json.load(open(path)))[:300])
