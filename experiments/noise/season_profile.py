"""Why the sky's 100-day autocorrelation is below zero: the residuals of the development stars'
real baselines (last 605.25 days) from each season's median, before and after one season
profile per star (slope and curvature in the time from the season's mean time, shared by all
its seasons, least squares) is taken out; medians by magnitude bin. Also counts the seasons the
windows hold. Writes outputs/experiments/noise/season_profile.json.

    python experiments/noise/season_profile.py [FOLDER]
"""

import json
import sys

import numpy as np

from microlens.photometry import ews
from microlens.simulation.noise_model import season_profile_basis
from microlens.simulation.residual_statistics import (
    MAG_EDGES,
    autocorrelations,
    last_days,
    magnitude_bin_labels,
    seasons,
)

FOLDER = sys.argv[1] if len(sys.argv) > 1 else "../shared/real/ogle_ews_2025"
rows = []
for event, segment in ews.baseline_segments(FOLDER, None, 2.0):
    t, f, e = last_days(segment.absolute_times(), segment.flux, segment.flux_err, 605.25)
    if t.size < 20:
        continue
    season = seasons(t)
    medians = np.array([np.median(f[season == s]) for s in range(season[-1] + 1)])
    z = (f - medians[season]) / e
    basis = season_profile_basis(t, season)
    coefficients, *_ = np.linalg.lstsq(basis, z, rcond=None)
    rows.append({"mag": event.fit.i_bl, "seasons": int(season[-1] + 1),
                 "season_medians": autocorrelations(t, z)["acf_100d"],
                 "profile_out": autocorrelations(t, z - basis @ coefficients)["acf_100d"]})
bins = np.digitize([r["mag"] for r in rows], MAG_EDGES)
out = {"stars": len(rows), "bins": magnitude_bin_labels(), "acf_100d": {}}
for key in ("season_medians", "profile_out"):
    values = np.array([r[key] for r in rows])
    out["acf_100d"][key] = [float(np.nanmedian(values[bins == k]))
                            for k in range(len(MAG_EDGES) + 1)]
counts = np.unique([r["seasons"] for r in rows], return_counts=True)
out["windows_by_seasons"] = {str(n): int(c) for n, c in zip(*counts, strict=True)}
json.dump(out, open("outputs/experiments/noise/season_profile.json", "w"), indent=1)
print(json.dumps(out, indent=1))
