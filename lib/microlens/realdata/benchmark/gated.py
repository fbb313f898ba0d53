"""The benchmark's figures with a physics gate on the model's final answers, from its records.

:func:`gate_record` reads a benchmark record (its per-event rows keep every segment's final
probabilities) and the peer's statistics of the same segments (from the same record when it
ran with a peer, or from another record over the same events, such as a peer-only run) and
recomputes every figure with the model's final answers conditioned by a
:class:`microlens.evaluation.gate.PhysicsGate`: no model runs again, so an ablation of the gate
costs seconds and rebuilds from stored records.

Stream false alerts and alert timing read the answers after every observation; the peer
answers once per segment, so they are not gated (the record says so under ``gate``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from microlens.evaluation.gate import PhysicsGate
from microlens.realdata.benchmark.summary import summarise

STREAM_NOT_GATED = ("stream false alerts and timing read the answers after every observation; "
                    "the peer answers once per segment, so they are the model's own")


def _peer_statistics(record: Mapping, peer_record: Mapping | None) -> dict[str, dict]:
    """Per event name, the peer's answers of its segments (``{"event": ..., "baseline":
    ...}``)."""
    source = record if peer_record is None else peer_record
    return {row["name"]: {part: (row.get(part) or {}).get("peer")
                          for part in ("event", "baseline")} for row in source["events"]}


def gate_record(record: Mapping, gate: PhysicsGate | None, peer_record: Mapping | None = None,
                ) -> dict:
    """``record`` with its model's final answers gated and every figure recomputed.

    Parameters
    ----------
    record : dict
        A benchmark record with a model (:func:`microlens.realdata.benchmark.run_benchmark`).
    gate : PhysicsGate or None
        The gate; None returns a copy of ``record`` with ``gate: None`` (the ablation's
        reference arm).
    peer_record : dict, optional
        A record with the peer's answers of the same events (matched by event name); default:
        ``record``'s own.

    Returns
    -------
    dict
        The gated record: rows with gated ``final`` answers (the model's own kept as
        ``final_ungated``), figures recomputed (:func:`~microlens.realdata.benchmark.summary.
        summarise`), and ``gate``: the thresholds, the segments it changed and what it does
        not gate.

    Raises
    ------
    ValueError
        For a record without model answers, or a model answer whose segment has no peer
        statistics (naming the event).
    """
    out = copy.deepcopy(dict(record))
    if gate is None:
        out["gate"] = None
        return out
    if not any((row.get(part) or {}).get("final") is not None
               for row in out["events"] for part in ("event", "baseline")):
        raise ValueError("gate_record: the record has no model answers to gate (a peer-only "
                         "run?)")
    statistics = _peer_statistics(record, peer_record)
    changed = {"event": 0, "baseline": 0}
    for row in out["events"]:
        for part in ("event", "baseline"):
            answer = row.get(part)
            if not answer or answer.get("final") is None:
                continue
            peer = statistics.get(row["name"], {}).get(part)
            if peer is None:
                raise ValueError(f"gate_record: event {row['name']}: its {part} segment has no "
                                 "peer statistics (run the benchmark with a peer, or give a "
                                 "peer_record over the same events)")
            gated = gate.apply(answer["final"], peer["anomaly"], peer["dchi2_event"])
            final = [float(p) for p in gated]
            if final != list(answer["final"]):
                changed[part] += 1
            answer["final_ungated"] = answer["final"]
            answer["final"] = final
    out.update(summarise(out["events"], out["rules"]))
    out["gate"] = {**gate.to_dict(), "changed_segments": changed, "stream": STREAM_NOT_GATED,
                   "peer_source": "the record's own" if peer_record is None else
                   peer_record.get("run_dir") or "a peer record"}
    return out


__all__ = ["STREAM_NOT_GATED", "gate_record"]
