"""The classical peer tuned on the fitted-noise ogle set's validation split, saved as JSON."""

from microlens import open_dataset
from microlens.realdata.real_events import tune_peer

peer = tune_peer(open_dataset("data/rb/ogle_fitted"), workers=2)
peer.save("outputs/experiments/real_benchmark/all/peer_oglefit.json")
print(peer)
