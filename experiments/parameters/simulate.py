"""The data sets of the parameter-estimation study, star-disjoint: events injected into the real
OGLE-IV baselines of one fold of the development stars for training (the recommended model's
recipe: the ``ogle`` preset's events, half of the no-event windows carrying a simulated
variable of the survey's contaminant mix), and into the other fold's baselines for the test
(98 % of that set in its test split: about 4,500 lensing test events; more than half of them are
observed near each checkpoint, more than the 2,000 each coverage cell needs).

Needs the star folds (``python -m microlens.realdata.benchmark.crossfit
../shared/real/ogle_ews_2025 --out data/folds/ogle_ews_2025``).

    python experiments/parameters/simulate.py   # writes data/parameters/{train,test}_injected
"""

from microlens import SimulationConfig, generate_dataset

COMMON = dict(survey="ogle", topology="stellar", injected_variables=0.5, contaminants="survey",
              windows_per_star=8)
TRAIN = SimulationConfig(n_per_class=2000, seed=13, baselines="data/folds/ogle_ews_2025/fold0",
                         **COMMON)
TEST = SimulationConfig(n_per_class=2300, seed=14, baselines="data/folds/ogle_ews_2025/fold1",
                        split_fractions=(0.01, 0.01, 0.98), **COMMON)

if __name__ == "__main__":
    generate_dataset(TRAIN, "data/parameters/train_injected", workers=2, progress=True)
    generate_dataset(TEST, "data/parameters/test_injected", workers=2, progress=True)
