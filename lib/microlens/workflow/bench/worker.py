"""Entry point of the fresh worker process that measures one configuration at one length."""

from __future__ import annotations

import json
import sys

from microlens.workflow.bench.infer import _measure_infer, _measure_stream
from microlens.workflow.bench.train import _measure_train


def _worker_main(spec_json: str) -> int:
    """Entry point of a worker process: measure one configuration, print its JSON."""
    spec = json.loads(spec_json)
    task = {"train": _measure_train, "infer": _measure_infer, "stream": _measure_stream}
    result = task[spec["task"]](spec)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0

