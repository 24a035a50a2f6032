"""The one training engine: a single loop that every method and every site shares.

Owns the loop over phases (rows + loss) with its optimiser, schedule and SalUn
gradient mask (``loop.py``), tensor batching and augmentation (``batches.py``),
the losses (``losses.py``), prediction (``predict.py``) and the choice of
device and mixed precision (``device.py``).
"""

from fedunlearn.engine.batches import augment_batch, iterate_batches, to_float
from fedunlearn.engine.device import resolve_device
from fedunlearn.engine.loop import Phase, TrainConfig, TrainStats, train
from fedunlearn.engine.predict import Predictions, predict

__all__ = [
    "Phase",
    "Predictions",
    "TrainConfig",
    "TrainStats",
    "augment_batch",
    "iterate_batches",
    "predict",
    "resolve_device",
    "to_float",
    "train",
]
