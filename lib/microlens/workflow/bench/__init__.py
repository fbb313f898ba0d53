"""Benchmarks that print JSON: ``python -m microlens.workflow.bench
{simulate,train,infer,classify,study}``.

Each figure is measured in one run, side by side, so ratios between them are meaningful on a
noisy machine; ``--help`` after a subcommand lists its options.

One module per program: :mod:`~microlens.workflow.bench.simulate`,
:mod:`~microlens.workflow.bench.train`,
:mod:`~microlens.workflow.bench.infer`, :mod:`~microlens.workflow.bench.classify` and
:mod:`~microlens.workflow.bench.study`; the pieces that ``train`` and ``infer`` share (synthetic
light curves, the full-attention baseline, FLOP counts, worker processes) in
:mod:`~microlens.workflow.bench.models`, the machine description in
:mod:`~microlens.workflow.bench.common`, the
command line in :mod:`~microlens.workflow.bench.cli`. Each module's docstring says what its figures
mean (also ``python -m microlens.workflow.bench SUBCOMMAND --help``).
"""

from __future__ import annotations

from microlens.workflow.bench.classify import bench_classify
from microlens.workflow.bench.cli import main
from microlens.workflow.bench.common import cpu_bf16_support
from microlens.workflow.bench.infer import INFER_CONFIGS, bench_infer
from microlens.workflow.bench.infer import (
           _measure_infer as _measure_infer,  # in-process measurements (tests)
)
from microlens.workflow.bench.infer import _measure_stream as _measure_stream
from microlens.workflow.bench.models import _model_config as _model_config
from microlens.workflow.bench.models import (
           count_flops,
           full_attention_baseline,
           synthetic_light_curves,
)
from microlens.workflow.bench.simulate import bench_simulate
from microlens.workflow.bench.study import bench_study
from microlens.workflow.bench.train import TRAIN_CONFIGS, bench_train
from microlens.workflow.bench.train import _measure_train as _measure_train

__all__ = ["INFER_CONFIGS", "TRAIN_CONFIGS", "bench_classify", "bench_infer", "bench_simulate",
           "bench_study", "bench_train", "count_flops", "cpu_bf16_support",
           "full_attention_baseline", "main", "synthetic_light_curves"]
