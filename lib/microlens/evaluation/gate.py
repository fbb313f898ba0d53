"""A physics gate on any classifier's final answer: only what a point-lens fit can support.

A classifier trained on simulated curves reads every departure from its training noise as
signal. On real OGLE-IV photometry that made every kind call a quarter to all of the real
events binary, where a few per cent are binary lenses: a residual the robust point-lens fit
explains (seasonal offsets, correlated scatter, a finite source or parallax) looked like a
caustic. The gate asks the classical peer's robust fit (:mod:`microlens.models.peer`) of the same
curve two questions and conditions the classifier's probabilities on the answers:

* **binary gate**: a binary call needs a local deviation from the best point lens. Where the
  peer's ``anomaly`` (the largest windowed χ² improvement of a bump or dip on the point-lens
  residuals) is not above ``binary_threshold``, the lens is single: ``P(binary)`` moves to
  ``P(single lens)``. The gate decides which lens, never whether there is one: ``P(lensing)``,
  on which alerts and operating points are set, is the classifier's own. (Renormalising over
  no event and single lens instead, measured on the real benchmark, lost 4-6 points of events
  found at a 2 % baseline false-alarm rate: an event the classifier called binary with some
  mass on "no event" fell in the ranking.)
* **event gate** (optional): a lensing call needs a point lens to beat a constant by
  ``event_threshold`` in χ² (the peer's ``dchi2_event``). Below it the answer is "no event".

Both thresholds default to the peer's own (:meth:`PhysicsGate.from_peer`), tuned on the
validation split of the classifier's training set: the gate adds no parameter fitted on the
data it is judged on. It acts on the final answer of a curve (or of any prefix whose peer
statistics are given); a stream's earlier answers are not gated unless the peer runs after
every observation too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

GATES = ("none", "binary", "binary+event")
"""The gate arms of an ablation: no gate, the binary gate, both gates."""


@dataclass(frozen=True)
class PhysicsGate:
    """The thresholds of the gate (module docstring).

    Attributes
    ----------
    binary_threshold : float
        A binary answer stands where the peer's ``anomaly`` exceeds it.
    event_threshold : float or None
        Smallest peer ``dchi2_event`` at which a lensing answer stands; None: no event gate.
    """

    binary_threshold: float
    event_threshold: float | None = None

    def __post_init__(self):
        for name in ("binary_threshold", "event_threshold"):
            value = getattr(self, name)
            if value is None and name == "event_threshold":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating) \
                    or not np.isfinite(value) or value < 0:
                raise ValueError(f"PhysicsGate.{name} must be a finite number >= 0, got "
                                 f"{value!r}")

    @classmethod
    def from_peer(cls, peer, *, event_gate: bool = False) -> PhysicsGate:
        """The gate at a tuned peer's thresholds (a :class:`~microlens.models.peer.
        ClassicalPeer` or its JSON form with ``binary_threshold``, ``event_threshold`` and
        ``binary_feature``).

        Raises
        ------
        ValueError
            For a peer whose binary feature is not ``anomaly`` (its threshold would be on
            another scale).
        """
        settings = peer if isinstance(peer, Mapping) else asdict(peer)
        feature = settings.get("binary_feature", "anomaly")
        if feature != "anomaly":
            raise ValueError(f"PhysicsGate.from_peer: the peer decides binaries on "
                             f"{feature!r}; the gate reads 'anomaly' (tune a peer with "
                             "binary_feature='anomaly')")
        return cls(binary_threshold=float(settings["binary_threshold"]),
                   event_threshold=float(settings["event_threshold"]) if event_gate else None)

    @classmethod
    def arm(cls, peer, name: str) -> PhysicsGate | None:
        """The gate of ablation arm ``name`` (:data:`GATES`) at ``peer``'s thresholds; None
        for ``'none'``."""
        if name not in GATES:
            raise ValueError(f"unknown gate {name!r}; valid choices: {', '.join(GATES)}")
        if name == "none":
            return None
        return cls.from_peer(peer, event_gate=name == "binary+event")

    def apply(self, probabilities, anomaly, dchi2_event=None) -> np.ndarray:
        """``probabilities`` (``(..., 3)``: no event, single lens, binary) conditioned on the
        gate's answers for curves with these peer statistics (broadcast over the leading axes).

        Raises
        ------
        ValueError
            For probabilities without a last axis of 3, or no ``dchi2_event`` with an event gate.
        """
        p = np.array(probabilities, dtype=np.float64)
        if p.ndim == 0 or p.shape[-1] != 3:
            raise ValueError(f"PhysicsGate.apply: probabilities need a last axis of 3 "
                             f"classes, got shape {p.shape}")
        # the peer's own rules: binary above its threshold, an event at or above its threshold;
        # a NaN statistic (too few points to fit) is no evidence
        not_binary = ~(np.asarray(anomaly, dtype=np.float64) > self.binary_threshold)
        single = p.copy()
        single[..., 1] += single[..., 2]
        single[..., 2] = 0.0
        p = np.where(not_binary[..., None], single, p)
        if self.event_threshold is not None:
            if dchi2_event is None:
                raise ValueError("PhysicsGate.apply: the event gate needs dchi2_event")
            no_event = ~(np.asarray(dchi2_event, dtype=np.float64) >= self.event_threshold)
            p = np.where(no_event[..., None], np.array([1.0, 0.0, 0.0]), p)
        return p

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["GATES", "PhysicsGate"]
