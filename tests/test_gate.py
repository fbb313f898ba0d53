"""The physics gate: what a point-lens fit supports, imposed on a classifier's final answer
(microlens.evaluation.gate), and the real benchmark's figures recomputed through it from a
record."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_real_benchmark import SignificanceModel, folder  # noqa: F401 (fixture)

from microlens.evaluation.gate import GATES, PhysicsGate
from microlens.models.peer import ClassicalPeer
from microlens.realdata.benchmark import run_benchmark
from microlens.realdata.benchmark.gated import gate_record


def test_a_binary_answer_stands_only_above_the_anomaly_threshold():
    gate = PhysicsGate(binary_threshold=20.0)
    p = np.array([[0.2, 0.2, 0.6], [0.2, 0.2, 0.6], [0.0, 0.0, 1.0], [0.3, 0.1, 0.6]])
    out = gate.apply(p, anomaly=[25.0, 20.0, 3.0, np.nan])
    np.testing.assert_array_equal(out[0], p[0])  # above: untouched
    np.testing.assert_allclose(out[1], [0.2, 0.8, 0.0])  # at it: a single lens
    np.testing.assert_array_equal(out[2], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(out[3], [0.3, 0.7, 0.0])  # NaN: no evidence, as for the peer
    np.testing.assert_array_equal(p[1], [0.2, 0.2, 0.6])  # the input is not changed


def test_the_event_gate_keeps_lensing_only_where_a_point_lens_beats_a_constant():
    gate = PhysicsGate(binary_threshold=20.0, event_threshold=50.0)
    p = np.array([[0.1, 0.3, 0.6], [0.1, 0.3, 0.6], [0.1, 0.3, 0.6]])
    out = gate.apply(p, anomaly=[30.0, 30.0, 30.0], dchi2_event=[50.0, 49.9, np.nan])
    np.testing.assert_array_equal(out, [[0.1, 0.3, 0.6], [1, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="needs dchi2_event"):
        gate.apply(p, anomaly=[30.0] * 3)


def test_gates_come_from_a_tuned_peer_and_refuse_bad_settings():
    peer = ClassicalPeer(event_threshold=54.7, binary_threshold=19.6)
    assert PhysicsGate.from_peer(peer) == PhysicsGate(19.6)
    assert PhysicsGate.arm(peer, "binary+event") == PhysicsGate(19.6, 54.7)
    assert PhysicsGate.arm(peer.to_dict(), "binary") == PhysicsGate(19.6)
    assert PhysicsGate.arm(peer, "none") is None and GATES[0] == "none"
    with pytest.raises(ValueError, match="unknown gate 'all'; valid choices: none, binary"):
        PhysicsGate.arm(peer, "all")
    with pytest.raises(ValueError, match="decides binaries on 'excess'"):
        PhysicsGate.from_peer({**peer.to_dict(), "binary_feature": "excess"})
    for bad in (-1.0, float("nan"), True, "20"):
        with pytest.raises(ValueError, match="binary_threshold must be a finite number"):
            PhysicsGate(bad)
    with pytest.raises(ValueError, match="last axis of 3 classes, got shape"):
        PhysicsGate(1.0).apply(np.ones((4, 2)), np.zeros(4))


probabilities = arrays(np.float64, st.tuples(st.integers(1, 6), st.just(3)),
                       elements=st.floats(0, 1)).filter(lambda p: (p.sum(axis=1) > 0).all()
                                                        ).map(lambda p: p / p.sum(axis=1,
                                                                                  keepdims=True))


@given(probabilities, st.floats(0, 100), st.data())
def test_gated_answers_move_binary_mass_to_the_single_lens_only(p, threshold, data):
    anomaly = data.draw(arrays(np.float64, p.shape[0], elements=st.floats(0, 100)))
    out = PhysicsGate(threshold).apply(p, anomaly)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    assert (out >= 0).all()
    kept = anomaly > threshold
    np.testing.assert_array_equal(out[kept], p[kept])
    assert (out[~kept, 2] == 0).all()
    # which lens, never whether: P(no event) is the classifier's own
    np.testing.assert_array_equal(out[:, 0], p[:, 0])


class BinaryLeaningModel(SignificanceModel):
    """SignificanceModel with its lensing mass 30 % single lens, 70 % binary."""

    def predict_proba(self, times, flux, flux_err, mask=None, *, check_intervals=True):
        p = super().predict_proba(times, flux, flux_err, mask)
        return torch.stack([p[..., 0], p[..., 2], p[..., 1]], dim=-1)


def test_a_record_is_gated_from_its_own_peer_or_another_record(folder):  # noqa: F811
    events = ["blg-0001", "blg-0006"]
    peer = ClassicalPeer(event_threshold=200.0, binary_threshold=1e9)  # never binary
    record = run_benchmark(folder, BinaryLeaningModel(), peer=peer, events=events)
    assert record["metrics"]["model"]["events_binary"]["count"] == 2
    gated = gate_record(record, PhysicsGate.from_peer(peer))
    model = gated["metrics"]["model"]
    assert model["events_binary"]["count"] == 0 and model["events_lensing"]["count"] == 2
    assert gated["gate"]["changed_segments"]["event"] == 2
    assert gated["metrics"]["model"]["stream_false_alerts"] == (
        record["metrics"]["model"]["stream_false_alerts"])  # the stream is not gated
    row = gated["events"][0]["event"]
    assert row["final_ungated"] == record["events"][0]["event"]["final"]
    assert record["events"][0]["event"].get("final_ungated") is None  # the input is kept
    # the peer's statistics from a peer-only record over the same events give the same answer
    alone = run_benchmark(folder, BinaryLeaningModel(), peer="none", events=events)
    peer_only = run_benchmark(folder, None, peer=peer, events=events)
    again = gate_record(alone, PhysicsGate.from_peer(peer), peer_only)
    assert again["metrics"]["model"] == model
    assert gate_record(record, None)["gate"] is None
    with pytest.raises(ValueError, match="event blg-0001: its event segment has no peer"):
        gate_record(alone, PhysicsGate(1.0))
    with pytest.raises(ValueError, match="no model answers to gate"):
        gate_record(peer_only, PhysicsGate(1.0))


def test_the_command_line_gates_with_the_peer_it_is_given(folder, tmp_path, capsys):  # noqa: F811
    from test_real_benchmark import tiny_run

    from microlens.realdata.benchmark.cli import main

    run, peer_file, out = tiny_run(tmp_path), tmp_path / "peer.json", tmp_path / "gated.json"
    ClassicalPeer(event_threshold=200.0, binary_threshold=1e9).save(peer_file)
    assert main([str(folder), "--run", str(run), "--peer", str(peer_file), "--gate",
                 "binary+event", "--events", "1", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["gate"]["binary_threshold"] == 1e9
    assert summary["gate"]["event_threshold"] == 200.0
    assert summary["metrics"]["model"]["events_binary"]["count"] == 0
    assert json.loads(out.read_text())["events"][0]["event"]["final_ungated"] is not None
    assert main([str(folder), "--run", str(run), "--peer", "none", "--gate", "binary"]) == 2
    assert "give a run and a peer" in capsys.readouterr().err
