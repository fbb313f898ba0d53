"""Device choice: one list of names, one resolution, the same for every entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from microlens.core import devices


def test_names_resolve_to_the_devices_this_machine_has():
    assert devices.local_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert devices.resolve_device_name("auto") == expected
    assert devices.local_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused_with_the_alternatives():
    with pytest.raises(ValueError, match="device 'cuda' requested but CUDA is not available; "
                                         "use 'auto' or 'cpu'"):
        devices.local_device("cuda")


@pytest.mark.parametrize("bad", ["gpu", "CPU", "", None, 0])
def test_unknown_names_are_named_with_the_valid_choices(bad):
    with pytest.raises(ValueError, match=rf"unknown device {bad!r}; valid: auto, cpu, cuda"):
        devices.local_device(bad)
    with pytest.raises(ValueError, match=rf"unknown --device {bad!r}; valid: auto, cpu, cuda"):
        devices.check_device(bad, "--device")


def test_every_entry_point_takes_the_one_list():
    from microlens.training.train import TrainConfig
    from microlens.workflow.studies.definition import VALUE_CHOICES

    assert VALUE_CHOICES["device"] is devices.DEVICES
    for name in devices.DEVICES:
        assert TrainConfig(device=name).device == name
    with pytest.raises(ValueError, match="unknown device 'gpu'; valid: auto, cpu, cuda"):
        TrainConfig(device="gpu")


def test_checking_a_name_does_not_import_torch():
    """The study runner validates --device before anything imports torch (~2 s)."""
    code = ("import sys; import microlens.core.devices as d; d.check_device('cpu'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
