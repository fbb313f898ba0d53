"""Photometry: reading real survey light curves.

Photometry files of any survey (whitespace, CSV or IPAC; magnitudes or flux; JD, HJD, HJD' or
MJD) into baseline-flux units (:mod:`~microlens.photometry.files`), and folders in the OGLE
Early Warning System layout with OGLE's own fits (:mod:`~microlens.photometry.ews`, the download
helper :mod:`~microlens.photometry.ews_download`).
"""

from microlens.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DEFAULT_REFERENCE_EPOCH": "files",
    "DEGENERATE_AMAX": "ews",
    "DROP_REASONS": "files",
    "DROP_WARNING_FRACTION": "files",
    "EWS_COLUMNS": "ews",
    "EwsEvent": "ews",
    "EwsFit": "ews",
    "FIT_ROWS": "ews",
    "FileSummary": "files",
    "KINDS": "files",
    "MAG_RANGE": "files",
    "OGLE_EWS_URL": "ews_download",
    "Photometry": "files",
    "PhotometryWarning": "files",
    "STAR_MATCH_ARCSEC": "ews",
    "SUBSET_ARCHIVE": "ews",
    "SUBSET_FOLDER": "ews",
    "ShippedEvent": "files",
    "TIME_SYSTEMS": "files",
    "baseline_end": "ews",
    "download_season": "ews_download",
    "estimate_baseline_flux": "files",
    "event_end": "ews",
    "event_names": "ews_download",
    "exclusion_reasons": "ews",
    "extract_subset": "ews",
    "from_mulens_data": "files",
    "infer_kind": "files",
    "infer_time_system": "files",
    "make_subset": "ews",
    "median_interval": "ews",
    "parse_params": "ews",
    "peaks_after_data": "ews",
    "points_in": "ews",
    "points_per_night": "ews",
    "predicted_snr": "ews",
    "read_event": "files",
    "read_file": "files",
    "read_folder": "ews",
    "read_photometry": "ews",
    "read_shipped_event": "files",
    "season_url": "ews_download",
    "segment": "ews",
    "shipped_data_dir": "files",
    "shipped_events": "files",
    "shipped_subset": "ews",
    "source_flux": "ews",
})
