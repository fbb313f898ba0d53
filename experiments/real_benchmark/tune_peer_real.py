"""The classical peer tuned on the realistic ogle set's validation split, saved as JSON."""

from microlens import open_dataset
from microlens.realdata.real_events import tune_peer

peer = tune_peer(open_dataset("data/rb/ogle_real"), workers=1)
peer.save("outputs/experiments/real_benchmark/all/peer_ogle_real.json")
print(peer)
