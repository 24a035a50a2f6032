"""Dataset contracts: binarisation, file names, checksums, the name registry."""

from __future__ import annotations

import numpy as np
import pytest

from fedunlearn.data import DATASET_NAMES, DATASETS, SIZES, DataError, DatasetSpec, get_dataset_spec


def test_binarise_dermamnist_maps_akiec_bcc_mel_to_malignant() -> None:
    spec = get_dataset_spec("dermamnist")
    labels = np.arange(7, dtype=np.uint8)[:, None]  # official (N, 1) uint8
    out = spec.binarise(labels)
    assert out.dtype == np.int64 and out.shape == (7,)
    assert out.tolist() == [1, 1, 0, 0, 1, 0, 0]


def test_binarise_pathmnist_maps_stroma_and_adenocarcinoma_to_malignant() -> None:
    out = get_dataset_spec("pathmnist").binarise(np.arange(9))
    assert out.tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_specs_match_method_table() -> None:
    derma, path = DATASETS["dermamnist"], DATASETS["pathmnist"]
    assert derma.malignant_labels == frozenset({0, 1, 4}) and path.malignant_labels == frozenset(
        {7, 8}
    )
    assert len(derma.class_names) == 7 and len(path.class_names) == 9
    assert "melanoma" in derma.class_names[4]
    assert dict(derma.n_samples) == {"train": 7007, "val": 1003, "test": 2005}
    assert dict(path.n_samples) == {"train": 89996, "val": 10004, "test": 7180}
    assert DATASET_NAMES == ("dermamnist", "pathmnist", "synthetic")
    hash(derma)  # frozen and hashable despite the mapping field


@pytest.mark.parametrize(
    ("size", "filename"),
    [
        (28, "dermamnist.npz"),
        (64, "dermamnist_64.npz"),
        (128, "dermamnist_128.npz"),
        (224, "dermamnist_224.npz"),
    ],
)
def test_filename_per_size(size: int, filename: str) -> None:
    spec = get_dataset_spec("dermamnist")
    assert spec.filename(size) == filename
    assert filename.split(".")[0] in spec.url(size)


def test_official_md5_from_medmnist_info() -> None:
    # values from /work/shared/data/README.md (medmnist.INFO)
    assert get_dataset_spec("dermamnist").md5(28) == "0744692d530f8e62ec473284d019b0c7"
    assert get_dataset_spec("pathmnist").md5(28) == "a8b06965200029087d5bd730944a56c1"
    assert get_dataset_spec("pathmnist").md5(64) != get_dataset_spec("pathmnist").md5(28)


@pytest.mark.parametrize("size", [32, 0, "28", 28.0, True])
def test_unpublished_size_is_a_data_error(size: object) -> None:
    with pytest.raises(DataError, match="28, 64, 128, 224"):
        get_dataset_spec("dermamnist").filename(size)  # type: ignore[arg-type]


def test_get_dataset_spec_lists_valid_names() -> None:
    assert get_dataset_spec(" DermaMNIST ") is DATASETS["dermamnist"]
    with pytest.raises(DataError, match="dermamnist, pathmnist, synthetic"):
        get_dataset_spec("chestmnist")
    with pytest.raises(DataError, match="make_synthetic"):
        get_dataset_spec("synthetic")


def test_sizes_and_spec_type() -> None:
    assert SIZES == (28, 64, 128, 224)
    assert all(isinstance(s, DatasetSpec) for s in DATASETS.values())
