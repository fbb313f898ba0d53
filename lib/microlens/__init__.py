"""microlens: simulate, train and study real-time classifiers of gravitational microlensing events.

The package by concern (each subpackage's docstring says what it holds)::

    core        paths, seeds, settings, command lines, devices, metrics, the three classes
    photometry  reading real survey photometry and OGLE EWS folders
    simulation  light curves of the three classes: synthetic, or injected into real baselines
    data        data sets on disk (generate, open), labels, summaries
    models      every classifier kind, the classical peer, streaming, run directories
    training    one training loop (supervised, pretraining, fine-tuning), DDP
    evaluation  held-out evaluation, the physics gate, the analyses
    realdata    models on real photometry: one event, the real benchmark
    reports     figures and explorers built from records
    workflow    notebooks, studies, figure rebuilds, benchmarks

Each layer imports only the ones above it in this list. The few names a session needs are
here, imported on first use::

    import microlens as ml

    store = ml.open_dataset(ml.generate_dataset(ml.SimulationConfig(n_per_class=100), "data/x"))
    run = ml.train(ml.TrainConfig(dataset="data/x", run_name="x", epochs=1))
    summary = ml.evaluate_run(run)
    answer = ml.classify_event(ml.load_model(run), ml.read_event("my_event/"))
"""

from microlens.core.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    # simulation and data sets
    "SimulationConfig": "simulation.simulate",
    "simulate_event": "simulation.events",
    "generate_dataset": "data.store",
    "open_dataset": "data.store",
    "LightCurveStore": "data.store",
    "LightCurveDataset": "data.store",
    "DatasetError": "data.store",
    "collate_light_curves": "data.store",
    "CADENCES": "simulation.presets",
    "ERRORS": "simulation.presets",
    "TOPOLOGIES": "simulation.presets",
    "SURVEYS": "simulation.presets",
    # models and training
    "ModelConfig": "models.config",
    "TrainConfig": "training.train",
    "train": "training.train",
    "load_model": "models.registry",
    # evaluation and real photometry
    "evaluate_run": "evaluation.evaluate",
    "read_event": "photometry.files",
    "classify_event": "realdata.real_events",
    # the classes and paths
    "CLASS_NAMES": "core.classes",
    "CLASS_LABELS": "core.classes",
    "PROJECT_ROOT": "core.paths",
    "resolve_path": "core.paths",
})
