"""Every random stream of a run, named, and derived from the run's one seed.

A stream is identified by the run's ``seed``, a registered stream name and
integer keys (a site, a round, a request). Its state is numpy's
``SeedSequence(entropy=seed, spawn_key=(stream id, *keys))``: SeedSequence
hashes the whole tuple, so two different tuples give independent streams, and
seed ``s`` never shares a stream with seed ``s + 1`` (the old ``seed + 1``
test partition did exactly that). The stream id is the CRC-32 of its name,
checked once for collisions, so there are no magic salts to keep apart by hand.

>>> stream_seed(0, "partition-train") == stream_seed(0, "partition-train")
True
>>> stream_seed(0, "partition-test") != stream_seed(1, "partition-train")
True
>>> numpy_rng(3, "dropout", 2, 1).random() == numpy_rng(3, "dropout", 2, 1).random()
True
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

#: Every stream a run draws from, with what it decides. Keys, in order, after the name.
STREAMS: dict[str, str] = {
    "model-init": "the initial global model, or the single-site study's original model (no keys)",
    "original-train": "the single-site study's original training: batch order, augmentation (no keys)",
    "partition-train": "which training rows each site holds (no keys)",
    "partition-test": "which validation rows form each site's local test shard (no keys)",
    "client-sampling": "the sites that train in a round (round)",
    "dropout": "whether a site drops out of a round (round, site)",
    "local-train": "a site's batch order and augmentation in a training round (site, round)",
    "unlearn": "an unlearning pass: batch order, random labels (site, round; none single-site)",
    "recover": "a site's batch order in a risk-guard recovery round (site, round, step)",
    "unlearn-retry": "a site's risk-guard retried unlearning pass (site, round, retry)",
    "forget": "the rows a deletion request withdraws (site, request seed; none single-site)",
    "requests": "a stochastic request process's draw (process seed, round, site)",
    "reset-model": "the fresh global model of a retrain-policy reset (round)",
    "fresh-model": "a site's freshly initialised model for local Retrain (site)",
    "retrain-init": "the fresh model of a single-site Retrain baseline (no keys)",
    "mia": "the retain and test rows the MIA attack is fitted on (site, or no keys)",
    "holdout": "validation and test rows carved from a train-only file (class; seed 0 always: a property "
    "of the data, not of a run)",
}

_IDS: dict[str, int] = {name: zlib.crc32(name.encode()) for name in STREAMS}
if len(set(_IDS.values())) != len(_IDS):  # pragma: no cover - a new name collided
    raise RuntimeError("two stream names share a CRC-32: rename one")


def _sequence(seed: int, stream: str, keys: tuple[int, ...]) -> np.random.SeedSequence:
    if stream not in _IDS:
        raise ValueError(f"unknown random stream {stream!r}; known: {', '.join(STREAMS)}")
    if int(seed) < 0 or any(int(k) < 0 for k in keys):
        raise ValueError(f"seeds and stream keys must be >= 0, got seed {seed}, keys {keys}")
    return np.random.SeedSequence(int(seed), spawn_key=(_IDS[stream], *(int(k) for k in keys)))


def stream_seed(seed: int, stream: str, *keys: int) -> int:
    """A 63-bit integer seed for ``stream`` (for APIs that take an int, e.g. ``build_model``)."""
    return int(_sequence(seed, stream, keys).generate_state(1, dtype=np.uint64)[0] >> 1)


def numpy_rng(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """A numpy Generator on ``stream``."""
    return np.random.default_rng(_sequence(seed, stream, keys))


def torch_generator(seed: int, stream: str, *keys: int) -> torch.Generator:
    """A CPU torch Generator on ``stream``."""
    return torch.Generator().manual_seed(stream_seed(seed, stream, *keys))
