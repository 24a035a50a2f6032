"""--holdout: val and test carved from a train-only file (the real PathMNIST subset), stratified and fixed."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fedunlearn.data import DataError, UnofficialDataWarning, carve_holdout, load_dataset
from fedunlearn.study.centralized import study_data

PATHMNIST_SUBSET = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "pathmnist_28_train1000.npz"
)


def _train_only(write_npz, tiny_split, n: int = 200) -> Path:
    images, labels = tiny_split(n, 28, n_classes=9)  # PathMNIST: 7 and 8 malignant, 2 of 9 classes
    return write_npz("pathmnist.npz", train_images=images, train_labels=labels).parent


def _load(root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        return load_dataset("pathmnist", 28, root)


def test_splits_are_disjoint_stratified_fixed_and_in_file_order(write_npz, tiny_split) -> None:
    data = _load(_train_only(write_npz, tiny_split))
    carved = carve_holdout(data, 0.15, 0.25)
    again = carve_holdout(data, 0.15, 0.25)
    images = {s: getattr(carved, s).images for s in ("train", "val", "test")}
    for s in images:  # one fixed draw: the same rows every time
        assert torch.equal(images[s], getattr(again, s).images)
    # Rows are identified by their (random, distinct) pixels: disjoint, and together the whole file.
    keys = {s: {bytes(x.numpy()) for x in images[s]} for s in images}
    assert sum(len(k) for k in keys.values()) == len(data.train) == 200
    assert set().union(*keys.values()) == {bytes(x.numpy()) for x in data.train.images}
    malignant = int(data.train.labels.sum())  # 200 rows cycling 9 classes: 44 of classes 7, 8
    for split, fraction in (("test", 0.25), ("val", 0.15)):
        part = getattr(carved, split)
        assert int(part.labels.sum()) == round(fraction * malignant)
        assert len(part) - int(part.labels.sum()) == round(fraction * (200 - malignant))
    order = [bytes(x.numpy()) for x in data.train.images]
    for s in images:  # file order kept within each split
        positions = [order.index(bytes(x.numpy())) for x in images[s]]
        assert positions == sorted(positions)
    assert "val and test carved from the file's train split" in carved.provenance.note
    assert "train 120, val 30, test 50" in carved.provenance.note


def test_bad_holdouts_are_one_line_errors(write_npz, tiny_split) -> None:
    data = _load(_train_only(write_npz, tiny_split))
    for val, test in ((0.0, 0.2), (0.5, 0.5), (0.2, -0.1)):
        with pytest.raises(DataError, match="must be > 0 and sum to < 1"):
            carve_holdout(data, val, test)
    with pytest.raises(DataError, match="without both classes"):
        carve_holdout(data, 0.001, 0.25)  # 0 validation rows
    images, labels = tiny_split(20, 28)
    root = write_npz(
        "pathmnist.npz",
        root=Path(str(_train_only(write_npz, tiny_split)) + "-full"),
        train_images=images,
        train_labels=labels,
        test_images=images,
        test_labels=labels,
    ).parent
    with pytest.raises(DataError, match="has its own test split; drop --holdout"):
        carve_holdout(_load(root), 0.15, 0.25)


@pytest.mark.skipif(
    not PATHMNIST_SUBSET.is_file(), reason="the real PathMNIST subset is not on this machine"
)
def test_the_real_pathmnist_subset_runs_the_study_command(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "pathmnist.npz").symlink_to(PATHMNIST_SUBSET)
    data = study_data("pathmnist", 28, str(root), None, (0.15, 0.25))
    assert (len(data.train), len(data.val), len(data.test)) == (600, 150, 250)
    assert not data.provenance.official
    assert abs(data.test.prevalence - data.train.prevalence) < 0.01  # stratified: 21 % malignant
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedunlearn",
            "centralized",
            "--dataset",
            "pathmnist",
            "--methods",
            "retrain",
            "ft",
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--holdout",
            "0.15",
            "0.25",
            "--data-root",
            str(root),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "NOT the official file" in summary and "train 600, val 150, test 250" in summary
    assert np.isfinite(float(summary.split("| ft |")[1].split("|")[2]))  # an FNR was measured
