"""One check of light-curve inputs for every way data reaches a model.

Batch prediction (:meth:`~microlens.models.transformer.MicrolensTransformer.predict_proba`,
:func:`~microlens.evaluation.predictions.predict_events`,
:func:`~microlens.evaluation.predictions.run_predictions`),
evaluation, training data (:func:`~microlens.data.store.open_dataset` and the trainer) and streaming
(:class:`~microlens.models.stream.StreamingClassifier`) all ask the same questions of the
observations they will use (those where the mask is True):

=========================  ===================================================================
problem                    what is valid
=========================  ===================================================================
``nonfinite_times``        times are finite
``nonfinite_flux``         fluxes are finite
``nonfinite_flux_err``     flux errors are finite
``nonpositive_flux_err``   flux errors are positive
``unsorted_times``         times increase within an event ...
``duplicate_times``        ... strictly (no two observations of an event share a time)
``no_observations``        every event has at least one observation
``mask_not_valid_first``   the mask puts valid observations first (padding at the end)
=========================  ===================================================================

The checks are vectorised over events and observations (a few array passes, no Python loop
over events), so they cost little beside a forward pass; :func:`scan_problems` runs them in
chunks over memory-mapped arrays larger than memory. Padding (mask False) is never inspected:
stored datasets pad with zeros.

A bad input raises :class:`InvalidLightCurveError` (a ``ValueError``) naming the argument, the
event and observation, the bad value and what is valid; when many events are bad, the count and
the first few. Shapes, dtypes and types are checked first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROBLEMS: dict[str, str] = {
    "nonfinite_times": "non-finite times",
    "nonfinite_flux": "non-finite fluxes",
    "nonfinite_flux_err": "non-finite flux errors",
    "nonpositive_flux_err": "non-positive flux errors",
    "unsorted_times": "times out of order",
    "duplicate_times": "repeated times",
    "no_observations": "no observations",
    "mask_not_valid_first": "valid observations not first",
}
"""Every problem code the checks report, with a short description (in reporting order)."""

_RULES = {
    "nonfinite": "observations must be finite (times, fluxes and errors where the mask is True)",
    "nonpositive_flux_err": "flux errors must be positive",
    "unsorted_times": "times must increase within an event (sort each event by time)",
    "duplicate_times": "times must increase strictly within an event (merge or drop repeated "
                       "observations)",
    "no_observations": "every event needs at least one observation (a True in its mask)",
    "mask_not_valid_first": "mask must put valid observations first (padding at the end)",
}

SHOWN = 3
"""How many bad events a message lists before ``and N more``."""


class InvalidLightCurveError(ValueError):
    """Light-curve inputs a model cannot use (non-finite, non-positive error, unsorted, ...)."""


class InvalidDataWarning(UserWarning):
    """A dataset holds events that models cannot use (see ``LightCurveStore.invalid_events``)."""


def show(value) -> str:
    """A number as its dtype writes it shortest (float32 -0.1 as ``-0.1``, not -0.100000001)."""
    if hasattr(value, "item") and getattr(value, "dtype", None) is not None:
        dtype = str(value.dtype).replace("torch.", "")
        value = value.item()
        if dtype == "float32":
            return str(np.float32(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return str(np.float64(value))
    return repr(value)


def rule(problem: str) -> str:
    """What is valid, for one problem code of :data:`PROBLEMS`."""
    return _RULES["nonfinite" if problem.startswith("nonfinite") else problem]


# --------------------------------------------------------------------------------------------
# The checks (NumPy arrays in, one boolean array per problem out)
# --------------------------------------------------------------------------------------------


def find_problems(times: np.ndarray, flux: np.ndarray, flux_err: np.ndarray,
                  mask: np.ndarray | None = None, *,
                  check_mask_order: bool = True) -> dict[str, np.ndarray]:
    """Where each problem occurs: ``{code: (B, N) bool}`` for the codes present.

    Parameters
    ----------
    times, flux, flux_err : ndarray ``(B, N)``
        Observations of ``B`` events (arrays of one shape; not checked here).
    mask : ndarray ``(B, N)`` bool, optional
        True where an observation exists (default: all). Only those observations are checked.
    check_mask_order : bool
        Report ``mask_not_valid_first`` and ``no_observations`` (off for the stream, whose
        first column is a previous observation that may not exist).

    Returns
    -------
    dict
        For each problem found, a ``(B, N)`` bool array marking the offending observations: for
        ``unsorted_times`` / ``duplicate_times`` the later of the two; for ``no_observations``
        column 0; for ``mask_not_valid_first`` the first valid observation after a gap. Codes with
        nothing to report are absent, so ``not find_problems(...)`` means valid.
    """
    valid = np.ones(times.shape, bool) if mask is None else mask
    found = {}

    def note(code, where):
        if where.any():
            found[code] = where

    finite_times = np.isfinite(times)
    note("nonfinite_times", valid & ~finite_times)
    note("nonfinite_flux", valid & ~np.isfinite(flux))
    finite_err = np.isfinite(flux_err)
    note("nonfinite_flux_err", valid & ~finite_err)
    with np.errstate(invalid="ignore"):
        note("nonpositive_flux_err", valid & finite_err & (flux_err <= 0))
    if times.shape[1] > 1:
        usable = valid & finite_times
        pair = usable[:, 1:] & usable[:, :-1]
        with np.errstate(invalid="ignore"):
            step = times[:, 1:] - times[:, :-1]
        pad = np.zeros((times.shape[0], 1), bool)
        note("unsorted_times", np.concatenate([pad, pair & (step < 0)], axis=1))
        note("duplicate_times", np.concatenate([pad, pair & (step == 0)], axis=1))
    if check_mask_order and mask is not None:
        empty = ~mask.any(axis=1)
        if empty.any():
            where = np.zeros(mask.shape, bool)
            where[:, 0] = empty
            found["no_observations"] = where
        if mask.shape[1] > 1:
            gap = np.zeros(mask.shape, bool)
            gap[:, 1:] = mask[:, 1:] & ~mask[:, :-1]
            note("mask_not_valid_first", gap)
    return found


def first_problems(found: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]]:
    """For each problem, ``(rows, first observation, number of bad observations)`` per bad event."""
    out = {}
    for code, where in found.items():
        counts = where.sum(axis=1)
        rows = np.flatnonzero(counts)
        out[code] = (rows, where[rows].argmax(axis=1), counts[rows])
    return out


# --------------------------------------------------------------------------------------------
# Conversion and the batch check
# --------------------------------------------------------------------------------------------


def numpy_view(value, name: str) -> np.ndarray:
    """A NumPy view (or host copy) of an array-like or torch tensor (half precision as float32),
    named in the ``TypeError`` for anything that is not an array of numbers."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a NumPy array or torch tensor of numbers, got "
                        f"{type(value).__name__}") from exc
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype} "
                        f"({type(value).__name__})")
    return array


def _check_layout(arrays: Sequence[np.ndarray], names: Sequence[str], mask_name: str,
                  mask: np.ndarray | None) -> None:
    reference = arrays[0].shape
    for name, array in zip(names, arrays, strict=True):
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
        if array.ndim != 2:
            hint = f"; for one event pass {name}[None]" if array.ndim == 1 else ""
            raise InvalidLightCurveError(f"{name} must be 2-D (events, observations), got shape "
                                         f"{tuple(array.shape)}{hint}")
        if array.shape != reference:
            raise InvalidLightCurveError(
                f"{name} has shape {tuple(array.shape)} but {names[0]} has shape "
                f"{tuple(reference)}; {', '.join(names)} and {mask_name} must have one shape")
    if reference[1] == 0:
        raise InvalidLightCurveError(f"{names[0]} has shape {tuple(reference)}: no observations")
    if mask is not None:
        if mask.dtype != np.bool_:
            raise InvalidLightCurveError(f"{mask_name} must be bool (True where an observation "
                                         f"exists), got dtype {mask.dtype}")
        if mask.shape != reference:
            raise InvalidLightCurveError(
                f"{mask_name} has shape {tuple(mask.shape)} but {names[0]} has shape "
                f"{tuple(reference)}; {', '.join(names)} and {mask_name} must have one shape")


def describe(found: dict[str, np.ndarray], arrays: dict[str, np.ndarray],
             names: dict[str, str], *, events: Sequence | None = None,
             event_label: str = "event", stream: bool = False) -> str:
    """The message for the problems ``found`` (see :func:`find_problems`), one line each.

    ``arrays`` and ``names`` map ``times``, ``flux``, ``flux_err``, ``mask`` to the checked
    arrays and the caller's argument names; ``events`` names the rows (stream slots, store
    rows) when they are not the row indices themselves. ``stream``: each row is one update,
    ``[previous observation, new observation]``, indexed by row alone.
    """
    total = next(iter(found.values())).shape[0]
    return format_problems(first_problems(found), total, arrays, names, events=events,
                           event_label=event_label, stream=stream)


def format_problems(firsts: dict, total: int, arrays, names: dict[str, str], *,
                    events: Sequence | None = None, event_label: str = "event",
                    stream: bool = False) -> str:
    """The message of :func:`describe` from ``{code: (rows, first observation, ...)}`` (as
    :func:`first_problems` gives) over ``total`` events; ``arrays`` only need ``[i, j]``
    indexing (memory maps do)."""
    lines = []
    for code, (rows, first, *_) in firsts.items():
        items = [_item(code, int(i), int(j), arrays, names, events, event_label, stream)
                 for i, j in zip(rows[:SHOWN], first[:SHOWN], strict=True)]
        listed = ", ".join(items)
        if rows.size > SHOWN:
            listed += f" and {rows.size - SHOWN} more"
        if rows.size == 1:
            lines.append(f"{listed}; {rule(code)}")
        else:
            lines.append(f"{PROBLEMS[code]} in {rows.size} of {total} events: {listed}; "
                         f"{rule(code)}")
    if len(lines) == 1:
        return lines[0]
    return f"{len(lines)} problems in the light curves:\n  " + "\n  ".join(lines)


def _item(code, i, j, arrays, names, events, event_label, stream) -> str:
    who = f" ({event_label} {events[i]})" if events is not None else ""
    t, f, e, m = (names[k] for k in ("times", "flux", "flux_err", "mask"))
    times = arrays["times"]
    if stream:  # row i is one update; column 1 is the new observation, column 0 the previous
        at = f"[{i}]"
        if code in ("unsorted_times", "duplicate_times"):
            ev = events[i] if events is not None else i
            verb = ("is before its previous observation at " + show(times[i, j - 1])
                    if code == "unsorted_times" else "repeats its previous observation's time")
            return f"{t}{at}={show(times[i, j])} for {event_label} {ev} {verb}"
    else:
        at = f"[{i}, {j}]"
        if code == "unsorted_times":
            return (f"{t}{at}={show(times[i, j])} is before {t}[{i}, {j - 1}]="
                    f"{show(times[i, j - 1])}{who}")
        if code == "duplicate_times":
            return f"{t}{at}={show(times[i, j])} repeats {t}[{i}, {j - 1}]{who}"
        if code == "no_observations":
            return f"{m}[{i}] is all False{who}"
        if code == "mask_not_valid_first":
            return f"{m}{at} is True after {m}[{i}, {j - 1}] is False{who}"
    key = {"nonfinite_times": "times", "nonfinite_flux": "flux"}.get(code, "flux_err")
    return f"{names[key]}{at}{who} is {show(arrays[key][i, j])}"


def check_light_curves(times, flux, flux_err, mask=None, *,
                       names: Sequence[str] = ("times", "flux", "flux_err", "mask"),
                       events: Sequence | None = None, event_label: str = "event") -> None:
    """Raise :class:`InvalidLightCurveError` unless the light curves are usable by a model.

    Parameters
    ----------
    times, flux, flux_err : array-like ``(B, N)`` (NumPy, torch on any device, nested lists)
        Observation times [days], fluxes and 1-sigma flux errors of ``B`` events, padded at the end.
    mask : array-like ``(B, N)`` of bool, optional
        True where an observation exists (default: all). Padding is not inspected.
    names : four str
        The caller's names of the four arguments, used in messages.
    events : sequence, optional
        What to call row ``i`` in messages (e.g. store rows); default: the row index.
    event_label : str
        The word before an event's name (``'event'``, ``'store row'``).

    Raises
    ------
    TypeError
        For inputs that are not arrays of real numbers.
    InvalidLightCurveError
        For a wrong shape, mismatched shapes, a non-bool mask, or any of :data:`PROBLEMS`; the
        message names the argument, event, observation and value, and what is valid.
    """
    names = tuple(names)
    if len(names) != 4:
        raise ValueError(f"names must give four argument names, got {names!r}")
    arrays = [numpy_view(a, n) for a, n in zip((times, flux, flux_err), names, strict=False)]
    mask_array = None if mask is None else numpy_view(mask, names[3])
    _check_layout(arrays, names[:3], names[3], mask_array)
    found = find_problems(*arrays, mask_array)
    if found:
        keyed = dict(zip(("times", "flux", "flux_err"), arrays, strict=True))
        keyed["mask"] = mask_array
        raise InvalidLightCurveError(describe(
            found, keyed, dict(zip(("times", "flux", "flux_err", "mask"), names, strict=True)),
            events=events, event_label=event_label))


def as_model_inputs(times, flux, flux_err, mask=None, *, device=None, check: bool = True,
                    names: Sequence[str] = ("times", "flux", "flux_err", "mask")):
    """Checked torch tensors ``(times, flux, flux_err, mask)`` from NumPy or torch inputs.

    NumPy (and list) inputs become tensors of the same dtype (integers: float64 times, float32
    fluxes) on ``device``, or beside the first torch input when ``device`` is None; torch inputs
    keep their device unless ``device`` is given. ``mask=None`` becomes all True. With
    ``check``, :func:`check_light_curves` runs first (``names`` as there).
    """
    import torch

    if check:
        check_light_curves(times, flux, flux_err, mask, names=names)
    given = (times, flux, flux_err, mask)
    beside = next((v.device for v in given if isinstance(v, torch.Tensor)), None)

    def tensor(value, name):
        if isinstance(value, torch.Tensor):
            return value if device is None else value.to(device)
        array = numpy_view(value, name)
        if array.dtype.kind in "biu" and name != names[3]:
            array = array.astype(np.float64 if name == names[0] else np.float32)
        # writable memory for torch (memory-mapped datasets are read-only)
        return torch.as_tensor(np.require(array, requirements="W"),
                               device=device if device is not None else beside)

    out = [tensor(v, n) for v, n in zip((times, flux, flux_err), names, strict=False)]
    if mask is None:
        out.append(torch.ones(out[0].shape, dtype=torch.bool, device=out[0].device))
    else:
        out.append(tensor(mask, names[3]))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Streaming: one new observation per event, after its previous one
# --------------------------------------------------------------------------------------------


def check_stream_update(times, fluxes, errors, previous_times, events: Sequence[int]) -> None:
    """Raise :class:`InvalidLightCurveError` unless one streamed update is usable.

    ``times``, ``fluxes``, ``errors``: the new observation of each updated event, 1-D arrays
    (already of one length); ``previous_times``: each event's last time (NaN: none yet);
    ``events``: the event slots. Runs :func:`find_problems` on ``[previous, new]`` pairs, so the
    stream asks exactly what the batch checks ask.
    """
    times = np.asarray(times)
    previous_times = np.asarray(previous_times)
    # Fast path, the same questions on the 1-D values (a stream update costs ~1 ms in all, and
    # building the pairs costs ~0.1 ms): only a failing update goes on to find_problems.
    with np.errstate(invalid="ignore"):
        if (np.isfinite(times).all() and np.isfinite(fluxes).all()
                and np.isfinite(errors).all() and (np.asarray(errors) > 0).all()
                and not (times <= previous_times).any()):  # False where previous is NaN
            return
    pair_times = np.stack([np.asarray(previous_times, dtype=times.dtype), times], axis=1)
    had = ~np.isnan(pair_times[:, 0])
    mask = np.stack([had, np.ones_like(had)], axis=1)
    ones = np.ones_like(pair_times, dtype=np.asarray(fluxes).dtype)
    flux = np.stack([ones[:, 0], np.asarray(fluxes)], axis=1)
    err = np.stack([ones[:, 0], np.asarray(errors)], axis=1)
    found = find_problems(pair_times, flux, err, mask, check_mask_order=False)
    if found:
        arrays = {"times": pair_times, "flux": flux, "flux_err": err, "mask": mask}
        names = {"times": "times", "flux": "fluxes", "flux_err": "errors", "mask": "events"}
        raise InvalidLightCurveError(describe(found, arrays, names, events=list(events),
                                              stream=True))


__all__ = [
    "InvalidDataWarning", "InvalidLightCurveError", "PROBLEMS", "as_model_inputs",
    "check_light_curves", "check_stream_update", "describe", "find_problems", "first_problems",
    "format_problems", "rule", "show",
]  # fmt: skip
