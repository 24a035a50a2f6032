"""Loading MedMNIST archives: real copies, provenance, errors, caching and memory maps."""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fedunlearn.data import (
    BinaryDataset,
    DataError,
    ImageSplit,
    SyntheticSpec,
    UnofficialDataWarning,
    clear_cache,
    file_md5,
    load_dataset,
    loading,
    resolve_root,
    synthetic,
)

JPEG_MD5 = "a032e8b21d33ac007a130d549262064c"
DERMA_OFFICIAL_MD5 = "0744692d530f8e62ec473284d019b0c7"


def _load_quiet(*args, **kwargs) -> BinaryDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        return load_dataset(*args, **kwargs)


# --------------------------------------------------------------------------- real copies
def test_jpeg_dermamnist_binarised_counts_and_provenance(derma_root: Path) -> None:
    with pytest.warns(UnofficialDataWarning, match=JPEG_MD5) as record:
        ds = load_dataset("dermamnist", 28, derma_root)
    assert DERMA_OFFICIAL_MD5 in str(record[0].message) and "dermamnist.npz" in str(
        record[0].message
    )
    assert (len(ds.train), len(ds.val), len(ds.test)) == (7007, 1003, 2005)
    assert int(ds.train.labels.sum()) == 1366
    assert ds.train.images.shape == (7007, 28, 28, 3) and ds.train.images.dtype == torch.uint8
    assert ds.train.labels.dtype == torch.int64 and ds.train.source_labels.dtype == torch.int64
    # independent reference: the raw file, binarised by hand
    with np.load(derma_root / "dermamnist.npz") as raw:
        for split in ("train", "val", "test"):
            source = raw[f"{split}_labels"].reshape(-1)
            got = ds.split(split)
            assert got.labels.tolist() == np.isin(source, [0, 1, 4]).astype(int).tolist()
            assert got.source_labels.tolist() == source.tolist()
        assert torch.equal(ds.train.images, torch.from_numpy(raw["train_images"]))
    prov = ds.provenance
    assert prov.md5 == JPEG_MD5 and prov.official_md5 == DERMA_OFFICIAL_MD5
    assert prov.official is False and prov.synthetic is False
    assert (
        prov.path == str(derma_root / "dermamnist.npz")
        and prov.size == 28
        and prov.dataset == "dermamnist"
    )
    assert "not the official" in prov.note
    assert prov.to_dict()["md5"] == JPEG_MD5
    assert 0.19 < ds.train.prevalence < 0.2


def test_second_load_shares_tensors(derma_root: Path) -> None:
    first = _load_quiet("dermamnist", 28, derma_root)
    second = _load_quiet("dermamnist", 28, str(derma_root))
    assert second.train.images is first.train.images
    assert second.test.labels is first.test.labels
    with pytest.warns(UnofficialDataWarning):  # warned on every load, not only the first
        load_dataset("dermamnist", 28, derma_root)


def test_pathmnist_subset_has_no_val_or_test(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "pathmnist.npz").symlink_to(shared_data / "pathmnist_28_train1000.npz")
    ds = _load_quiet("pathmnist", 28, tmp_path)
    assert len(ds.train) == 1000 and ds.val is None and ds.test is None
    with np.load(tmp_path / "pathmnist.npz") as raw:
        assert int(ds.train.labels.sum()) == int(np.isin(raw["train_labels"], [7, 8]).sum())
    with pytest.raises(DataError, match="no test split") as err:
        ds.split("test")
    assert "fedunlearn data fetch --dataset pathmnist --size 28" in str(err.value)
    with pytest.raises(DataError, match="valid splits"):
        ds.split("validation")
    assert "val" in ds.provenance.note and "test" in ds.provenance.note
    assert ds.provenance.md5 == "5b7612f378fe06314953760dba5d3be4"


# --------------------------------------------------------------------------- errors
def test_missing_file_names_path_and_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("pathmnist", 64, tmp_path)
    message = str(err.value)
    assert str(tmp_path / "pathmnist_64.npz") in message
    assert f"fedunlearn data fetch --dataset pathmnist --size 64 --data-root {tmp_path}" in message
    assert "\n" not in message


def test_truncated_archive_is_a_data_error(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / "pathmnist_28_train1000.npz").read_bytes()
    (tmp_path / "pathmnist.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="delete it and fetch it again") as err:
        _load_quiet("pathmnist", 28, tmp_path)
    assert str(tmp_path / "pathmnist.npz") in str(err.value)


def test_garbage_and_single_array_files_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "dermamnist.npz").write_bytes(b"not a zip at all" * 10)
    with pytest.raises(DataError, match="damaged"):
        _load_quiet("dermamnist", 28, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    with open(other / "dermamnist.npz", "wb") as fh:
        np.save(fh, np.zeros((2, 28, 28, 3), np.uint8))
    with pytest.raises(DataError, match="single array"):
        _load_quiet("dermamnist", 28, other)


def test_wrong_image_shape_is_a_data_error(write_npz, tiny_split) -> None:
    images, labels = tiny_split(4, 28)
    path = write_npz("dermamnist.npz", train_images=images[:, :, :27], train_labels=labels)
    with pytest.raises(
        DataError, match=r"train_images .*\(4, 28, 27, 3\).*expected uint8 \(N, 28, 28, 3\)"
    ):
        _load_quiet("dermamnist", 28, path.parent)


def test_float_images_are_a_data_error(write_npz, tiny_split) -> None:
    images, labels = tiny_split(4, 28)
    path = write_npz("dermamnist.npz", train_images=images.astype(np.float32), train_labels=labels)
    with pytest.raises(DataError, match="float32"):
        _load_quiet("dermamnist", 28, path.parent)


def test_out_of_range_labels_are_a_data_error(write_npz, tiny_split) -> None:
    images, labels = tiny_split(4, 28)
    labels[2] = 7  # DermaMNIST has classes 0..6
    path = write_npz("dermamnist.npz", train_images=images, train_labels=labels)
    with pytest.raises(DataError, match=r"train_labels holds class ids 7 outside 0\.\.6"):
        _load_quiet("dermamnist", 28, path.parent)


def test_label_count_mismatch_is_a_data_error(write_npz, tiny_split) -> None:
    images, labels = tiny_split(4, 28)
    path = write_npz("dermamnist.npz", train_images=images, train_labels=labels[:3])
    with pytest.raises(DataError, match=r"train_labels has shape \(3, 1\); expected \(4, 1\)"):
        _load_quiet("dermamnist", 28, path.parent)


def test_missing_train_key_is_a_data_error(write_npz, tiny_split) -> None:
    images, labels = tiny_split(4, 28)
    path = write_npz("dermamnist.npz", val_images=images, val_labels=labels)
    with pytest.raises(DataError, match="no train_images array"):
        _load_quiet("dermamnist", 28, path.parent)


def test_half_a_split_is_a_data_error(write_npz, tiny_split) -> None:
    images, labels = tiny_split(4, 28)
    path = write_npz("dermamnist.npz", train_images=images, train_labels=labels, test_images=images)
    with pytest.raises(DataError, match="test_images but no test_labels"):
        _load_quiet("dermamnist", 28, path.parent)


def test_grayscale_and_flat_labels_accepted(write_npz, tiny_split) -> None:
    images, labels = tiny_split(5, 28)
    gray = images[..., 0]
    path = write_npz(
        "dermamnist.npz",
        train_images=gray,
        train_labels=labels.reshape(-1),
        test_images=gray,
        test_labels=labels,
    )
    ds = _load_quiet("dermamnist", 28, path.parent)
    assert ds.train.images.shape == (5, 28, 28, 1)
    assert torch.equal(ds.train.images[..., 0], torch.from_numpy(gray))
    assert ds.val is None and ds.test is not None and "no val split" in ds.provenance.note


def test_unknown_dataset_and_size(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="valid names: dermamnist, pathmnist, synthetic"):
        load_dataset("bloodmnist", 28, tmp_path)
    with pytest.raises(DataError, match="choose one of"):
        load_dataset("dermamnist", 100, tmp_path)


# --------------------------------------------------------------------------- memory-mapped sizes
def test_size_128_is_extracted_once_and_memory_mapped(write_npz, tiny_split) -> None:
    train_images, train_labels = tiny_split(3, 128, seed=1)
    test_images, test_labels = tiny_split(2, 128, seed=2)
    path = write_npz(
        "dermamnist_128.npz",
        compressed=True,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
    )
    ds = _load_quiet("dermamnist", 128, path.parent)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    cache = path.parent / ".fedunlearn-cache" / f"dermamnist_128-{md5[:12]}"
    assert sorted(p.name for p in cache.iterdir()) == [
        "test_images.npy",
        "train_images.npy",
    ]  # no temp files left
    assert torch.equal(ds.train.images, torch.from_numpy(train_images))
    assert torch.equal(ds.test.images, torch.from_numpy(test_images))
    assert ds.train.source_labels.tolist() == train_labels.reshape(-1).tolist()
    assert isinstance(np.load(cache / "train_images.npy", mmap_mode="r"), np.memmap)
    # a fresh process (cache cleared) reuses the extraction instead of writing it again
    stamp = (cache / "train_images.npy").stat().st_mtime_ns
    clear_cache()
    again = _load_quiet("dermamnist", 128, path.parent)
    assert (cache / "train_images.npy").stat().st_mtime_ns == stamp
    assert torch.equal(again.train.images, ds.train.images)


def test_damaged_extraction_is_redone(write_npz, tiny_split) -> None:
    images, labels = tiny_split(2, 128)
    path = write_npz("pathmnist_128.npz", train_images=images, train_labels=labels)
    _load_quiet("pathmnist", 128, path.parent)
    (extracted,) = (path.parent / ".fedunlearn-cache").glob("*/train_images.npy")
    extracted.write_bytes(extracted.read_bytes()[:100])
    clear_cache()
    ds = _load_quiet("pathmnist", 128, path.parent)
    assert torch.equal(ds.train.images, torch.from_numpy(images))


def test_size_64_is_memory_mapped_when_the_cache_is_writable(write_npz, tiny_split) -> None:
    images, labels = tiny_split(3, 64)
    path = write_npz("dermamnist_64.npz", train_images=images, train_labels=labels)
    ds = _load_quiet("dermamnist", 64, path.parent)
    assert torch.equal(ds.train.images, torch.from_numpy(images))
    (extracted,) = (path.parent / ".fedunlearn-cache").glob("*/train_images.npy")
    assert isinstance(np.load(extracted, mmap_mode="r"), np.memmap)


def test_small_sizes_fall_back_to_memory_on_a_read_only_root(
    write_npz, tiny_split, monkeypatch
) -> None:
    import fedunlearn.data.loading as loading

    images, labels = tiny_split(3, 28)
    path = write_npz("dermamnist.npz", train_images=images, train_labels=labels)

    def read_only(*args, **kwargs):
        raise loading._CacheUnwritable("read-only")

    monkeypatch.setattr(loading, "_extract_member", read_only)
    ds = _load_quiet("dermamnist", 28, path.parent)
    assert torch.equal(ds.train.images, torch.from_numpy(images))


# --------------------------------------------------------------------------- small pieces
def test_file_md5_is_streamed_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"fedunlearn" * 1000)
    expected = hashlib.md5(path.read_bytes()).hexdigest()
    assert file_md5(path) == expected

    def boom(*args, **kwargs):
        raise AssertionError("md5 recomputed")

    monkeypatch.setattr(loading.hashlib, "md5", boom)
    assert file_md5(path) == expected


def test_resolve_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDUNLEARN_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv("FEDUNLEARN_DATA_ROOT")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_root(None) == tmp_path / ".medmnist"


def test_image_split_subset_and_prevalence() -> None:
    split = ImageSplit(
        images=torch.arange(4 * 2 * 2 * 3, dtype=torch.uint8).reshape(4, 2, 2, 3),
        labels=torch.tensor([1, 0, 0, 1]),
        source_labels=torch.tensor([4, 5, 2, 0]),
    )
    assert len(split) == 4 and split.prevalence == 0.5
    sub = split.subset(torch.tensor([3, 1]))
    assert sub.labels.tolist() == [1, 0] and sub.source_labels.tolist() == [0, 5]
    assert torch.equal(sub.images[0], split.images[3])
    assert math.isnan(split.subset(torch.tensor([], dtype=torch.int64)).prevalence)
    with pytest.raises(DataError, match="int64"):
        ImageSplit(
            images=split.images, labels=torch.tensor([1, 0, 0]), source_labels=split.source_labels
        )


def test_synthetic_name_routes_to_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SyntheticSpec(n_train=20, n_val=5, n_test=5, size=28, seed=3)
    ds = load_dataset("synthetic", synthetic=spec)
    assert ds.name == "synthetic" and len(ds.train) == 20 and ds.provenance.synthetic
    seen: list[SyntheticSpec] = []
    monkeypatch.setattr(synthetic, "make_synthetic", lambda s: seen.append(s) or ds)
    assert load_dataset("Synthetic", 64) is ds
    assert seen == [SyntheticSpec(size=64)]  # the default spec at the asked size
