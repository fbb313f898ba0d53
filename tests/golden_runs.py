"""Golden training runs: the loss after every optimiser step and a hash of the final weights.

A standalone script (pytest does not collect it). It simulates a fixed tiny data set and, on one
torch thread, takes 20 optimiser steps for every neural model kind through the public
:func:`microlens.training.train.train`, 20 steps of masked pretraining through
:func:`microlens.training.pretrain.pretrain`, and 20 steps of fine-tuning a ``masked`` classifier
from that
pretraining. Per run it records the loss of each step, the validation loss of each epoch, the
fitted temperature and a SHA-256 of the final weights (every tensor of the state dicts, in key
order). A refactor of the training code that claims to change nothing must reproduce the record
bit for bit::

    python tests/golden_runs.py --record /tmp/golden_before.json   # before the change
    python tests/golden_runs.py --check /tmp/golden_before.json    # after: exit 1 on a difference
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

STEPS = 20
TRAIN_EVENTS = 32  # training events per run
STEP_BATCH = 16  # events per optimiser step of a training run: 2 steps per epoch, 10 epochs


def tiny_model(kind: str, pretrained: str = ""):
    from microlens.models.config import ModelConfig

    return ModelConfig(kind=kind, d_model=16, n_heads=2, n_layers=1, d_ff=32, window=16,
                       dropout=0.1, conv_stem_kernel=3, conv_stem_layers=2, kernel_size=3,
                       latent_dim=4, pretrained=pretrained)


def weights_hash(*state_dicts) -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes) of the state dicts, in key order."""
    digest = hashlib.sha256()
    for state in state_dicts:
        for name, tensor in state.items():
            digest.update(name.encode())
            digest.update(str(tensor.dtype).encode())
            digest.update(str(tuple(tensor.shape)).encode())
            tensor = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel()
                          else b"")
    return digest.hexdigest()


def _load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _history(run_dir: Path) -> list[dict]:
    from microlens.models.runs import read_history

    return read_history(run_dir)


def training_record(run_dir: Path) -> dict:
    """Step losses from ``steps.csv``, epoch validation losses, temperature, weight hashes."""
    from microlens.models.runs import read_csv_rows

    steps = read_csv_rows(run_dir / "steps.csv")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "step_losses": [float(r["loss"]).hex() for r in steps],
        "grad_norms": [float(r["grad_norm"]).hex() for r in steps],
        "val_losses": [float(r["val_loss"]).hex() for r in _history(run_dir)],
        "temperature": float(metrics["temperature"]).hex(),
        "best_weights": weights_hash(_load(run_dir / "best.pt")),
        "last_weights": weights_hash(_load(run_dir / "last.pt")["model"]),
    }


def pretraining_record(run_dir: Path) -> dict:
    """Pretraining has one step per epoch here: its history's train loss is the step's loss."""
    history = _history(run_dir)
    return {
        "step_losses": [float(r["train_loss"]).hex() for r in history],
        "val_losses": [float(r["val_loss"]).hex() for r in history],
        "best_weights": weights_hash(_load(run_dir / "encoder.pt")),
        "last_weights": weights_hash(_load(run_dir / "last.pt")["model"]),
    }


def golden_runs(work: Path) -> dict:
    """Every run's record, by name (the neural kinds, ``pretrain``, ``masked-finetune``)."""
    from microlens import SimulationConfig, generate_dataset
    from microlens.models.registry import neural_kinds
    from microlens.training.pretrain import PretrainConfig, pretrain
    from microlens.training.train import TrainConfig, train

    torch.set_num_threads(1)
    data = generate_dataset(SimulationConfig(n_per_class=20, n_epochs=100, seed=7,
                                             detectability=False),
                            work / "data", workers=1, progress=False)
    common = dict(dataset=str(data), runs_dir=str(work / "runs"), max_train_events=TRAIN_EVENTS,
                  batch_size=STEP_BATCH, epochs=STEPS * STEP_BATCH // TRAIN_EVENTS,
                  patience=0, seed=3, device="cpu", reference_points=10)
    records = {}
    for kind in neural_kinds():
        run = train(TrainConfig(run_name=kind, model=tiny_model(kind), **common), progress=False)
        records[kind] = training_record(run)
        print(f"recorded {kind}", flush=True)
    pre = pretrain(PretrainConfig(dataset=str(data), runs_dir=str(work / "pretrain"),
                                  run_name="golden", model=tiny_model("masked"),
                                  max_train_events=TRAIN_EVENTS, batch_size=TRAIN_EVENTS,
                                  epochs=STEPS, patience=0, seed=3, device="cpu",
                                  reference_points=10), progress=False)
    records["pretrain"] = pretraining_record(pre)
    print("recorded pretrain", flush=True)
    run = train(TrainConfig(run_name="masked-finetune", model=tiny_model("masked", str(pre)),
                            **common), progress=False)
    records["masked-finetune"] = training_record(run)
    print("recorded masked-finetune", flush=True)
    return records


def compare(before: dict, after: dict) -> str:
    """"identical" or where the first difference is."""
    if after is None:
        return "missing"
    for key, what in (("step_losses", "step"), ("grad_norms", "step"),
                      ("val_losses", "epoch")):
        old, new = before.get(key, []), after.get(key, [])
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            if a != b:
                return (f"differs at {what} {i + 1} ({key}: {float.fromhex(a)!r} -> "
                        f"{float.fromhex(b)!r})")
        if len(old) != len(new):
            return f"differs in the number of {key} ({len(old)} -> {len(new)})"
    for key in ("temperature", "best_weights", "last_weights"):
        if before.get(key) != after.get(key):
            return f"differs in {key}"
    return "identical"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", metavar="PATH", help="write the runs' record as JSON")
    group.add_argument("--check", metavar="PATH", help="compare the runs with a record")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="microlens-golden-") as tmp:
        records = golden_runs(Path(tmp))
    if args.record:
        Path(args.record).write_text(json.dumps(records, indent=1), encoding="utf-8")
        print(f"wrote {args.record} ({len(records)} runs)")
        return 0
    before = json.loads(Path(args.check).read_text(encoding="utf-8"))
    failed = False
    width = max(map(len, before))
    for name in before:
        verdict = compare(before[name], records.get(name))
        failed |= verdict != "identical"
        print(f"{name:<{width}}  {verdict}")
    for name in sorted(set(records) - set(before)):
        print(f"{name:<{width}}  new (not in the record)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
