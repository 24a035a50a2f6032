"""Named random streams: reproducible, independent of each other and across seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedunlearn.seeding import STREAMS, numpy_rng, stream_seed, torch_generator


def test_a_stream_is_a_pure_function_of_seed_name_and_keys() -> None:
    assert stream_seed(3, "local-train", 1, 4) == stream_seed(3, "local-train", 1, 4)
    a = numpy_rng(3, "dropout", 2, 1).random(5)
    np.testing.assert_array_equal(a, numpy_rng(3, "dropout", 2, 1).random(5))
    t1 = torch.rand(4, generator=torch_generator(5, "unlearn", 0, 2))
    assert torch.equal(t1, torch.rand(4, generator=torch_generator(5, "unlearn", 0, 2)))


def test_every_stream_seed_and_key_gives_a_distinct_seed() -> None:
    # The old code seeded seed s's test partition with s + 1, which is seed s+1's training
    # partition. Named streams never collide, across names, seeds and keys.
    seen = {}
    for seed in range(6):
        for name in STREAMS:
            for keys in {(), (0,), (1,), (0, 1), (1, 0), (seed + 1,), (seed + 1, 0)}:
                value = stream_seed(seed, name, *keys)
                assert value not in seen, (seed, name, keys, seen.get(value))
                seen[value] = (seed, name, keys)
    assert stream_seed(0, "partition-test") != stream_seed(1, "partition-train")


def test_streams_are_statistically_independent() -> None:
    a = numpy_rng(0, "partition-train").random(20_000)
    b = numpy_rng(0, "partition-test").random(20_000)
    c = numpy_rng(1, "partition-train").random(20_000)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03 and abs(np.corrcoef(a, c)[0, 1]) < 0.03


def test_unknown_stream_and_negative_keys_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown random stream 'dropuot'; known: model-init"):
        stream_seed(0, "dropuot")
    with pytest.raises(ValueError, match=">= 0"):
        stream_seed(-1, "dropout")
    with pytest.raises(ValueError, match=">= 0"):
        numpy_rng(0, "dropout", -2)


def test_stream_seeds_fit_torch_and_numpy() -> None:
    s = stream_seed(2**40, "model-init")
    assert 0 <= s < 2**63
    torch.Generator().manual_seed(s)
    np.random.default_rng(s)
