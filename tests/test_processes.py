"""Process pools of the project's own work run from any script: the children never import the
caller's ``__main__`` (standard input, a file without a main guard), and it is put back after."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from microlens.core.processes import main_module_hidden

PEER_SCRIPT = """\
import sys
import numpy as np
from microlens import open_dataset
from microlens.models.peer import peer_features
from microlens.models.curve_features import prefix_features
store = open_dataset(sys.argv[1])
rows = np.arange(12)  # six chunks of two: both workers fit
peer = peer_features(store, rows, workers=2)
prefix = prefix_features(store, rows, (0.5, 1.0), workers=2)
np.savez(sys.argv[2], dchi2=peer["dchi2_event"], prefix=prefix)
print("done")
"""


@pytest.fixture(scope="module")
def single_process_answers(small_store):
    from microlens.models.curve_features import prefix_features
    from microlens.models.peer import peer_features

    rows = np.arange(12)  # the script's rows
    return (peer_features(small_store, rows, workers=1)["dchi2_event"],
            prefix_features(small_store, rows, (0.5, 1.0), workers=1))


@pytest.mark.parametrize("how", ["standard input", pytest.param(
    "file without a main guard", marks=pytest.mark.slow)])
@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_peer_and_prefix_features_with_two_workers_run_from_any_script(
        how, tmp_path, small_store, single_process_answers):
    """Both used to die with BrokenProcessPool from standard input (multiprocessing re-imported
    a __main__ of '<stdin>'), and re-ran an unguarded script in every child."""
    out = tmp_path / "answers.npz"
    if how == "standard input":
        command, stdin = [sys.executable, "-", str(small_store.path), str(out)], PEER_SCRIPT
    else:
        script = tmp_path / "peer.py"
        script.write_text(PEER_SCRIPT)
        command, stdin = [sys.executable, str(script), str(small_store.path), str(out)], None
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("done") == 1  # the script ran once, not again in each child
    with np.load(out) as answers:
        np.testing.assert_array_equal(answers["dchi2"], single_process_answers[0])
        np.testing.assert_array_equal(answers["prefix"], single_process_answers[1])


def test_main_module_is_put_back_as_it_was():
    main = sys.modules["__main__"]
    before = (main.__dict__.get("__spec__", "absent"), main.__dict__.get("__file__", "absent"))
    with main_module_hidden():
        assert main.__spec__ is None and not hasattr(main, "__file__")
    assert (main.__dict__.get("__spec__", "absent"),
            main.__dict__.get("__file__", "absent")) == before
    with pytest.raises(RuntimeError), main_module_hidden():
        raise RuntimeError("an error inside the block")
    assert (main.__dict__.get("__spec__", "absent"),
            main.__dict__.get("__file__", "absent")) == before
