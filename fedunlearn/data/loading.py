"""Load a MedMNIST+ archive (or generate the synthetic set) as a binary dataset.

The official ``.npz`` layout is kept: images uint8 ``(N, H, W, C)`` (the
engine permutes per batch), labels reduced to malignant (1) / benign (0) with
the original class id kept beside them. Each archive is read once per process
and its tensors are shared by every caller (several simulated hospitals in one
process hold views of the same memory); at 128 and 224 px the images are
extracted once to ``<root>/.fedunlearn-cache/`` and memory-mapped.

References
----------
Yang et al., "MedMNIST v2", Scientific Data, 2023 (file layout and checksums).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import synthetic as _synthetic
from .specs import DataError, DatasetSpec, get_dataset_spec
from .splits import SPLITS, BinaryDataset, DataProvenance, ImageSplit
from .synthetic import SyntheticSpec

__all__ = [
    "CACHE_DIRNAME",
    "ENV_DATA_ROOT",
    "MMAP_SIZES",
    "SPLITS",
    "BinaryDataset",
    "DataError",
    "DataProvenance",
    "ImageSplit",
    "UnofficialDataWarning",
    "clear_cache",
    "file_md5",
    "load_dataset",
    "resolve_root",
]

ENV_DATA_ROOT = "FEDUNLEARN_DATA_ROOT"
CACHE_DIRNAME = ".fedunlearn-cache"
#: Sizes that must be memory-mapped (too large to hold per process). Smaller sizes are memory-mapped
#: too when the cache can be written (so the Ray actors of one machine share one copy through the
#: page cache), and held in memory otherwise (a read-only data root).
MMAP_SIZES: frozenset[int] = frozenset({128, 224})
"""Image sizes whose arrays are extracted once and memory-mapped, not held in RAM."""

_CHUNK = 1 << 22  # 4 MiB per read while hashing / extracting
# Errors numpy / zipfile raise on a damaged or foreign archive.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError, KeyError)


class UnofficialDataWarning(UserWarning):
    """The file's MD5 differs from the official MedMNIST one: results are not on the official data."""


# --------------------------------------------------------------------------- root and checksums
def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """Folder holding the MedMNIST archives.

    Order: the explicit argument, then ``$FEDUNLEARN_DATA_ROOT``, then
    ``~/.medmnist`` (medmnist's own default).
    """
    if root is not None:
        return Path(root).expanduser().absolute()
    env = os.environ.get(ENV_DATA_ROOT)
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".medmnist"


_LOCK = threading.RLock()
_MD5_CACHE: dict[tuple[str, int, int], str] = {}
_SPLIT_CACHE: dict[tuple[Any, ...], tuple[dict[str, ImageSplit | None], list[str]]] = {}


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (os.path.realpath(path), st.st_mtime_ns, st.st_size)


def file_md5(path: str | os.PathLike[str]) -> str:
    """MD5 hex digest of a file, streamed; cached per (path, mtime, size) in this process."""
    path = Path(path)
    key = _stat_key(path)
    with _LOCK:
        cached = _MD5_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    with _LOCK:
        _MD5_CACHE[key] = value
    return value


def clear_cache() -> None:
    """Forget every array, checksum and synthetic dataset cached in this process (tests, long sessions)."""
    with _LOCK:
        _MD5_CACHE.clear()
        _SPLIT_CACHE.clear()
    _synthetic.clear_synthetic_cache()


# --------------------------------------------------------------------------- reading
def _corrupt(path: Path, exc: BaseException) -> DataError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(
        f"{path} is damaged or not a MedMNIST .npz ({type(exc).__name__}: {reason}); "
        "delete it and fetch it again"
    )


def _check_images(array: np.ndarray, key: str, size: int, path: Path) -> np.ndarray:
    expected = f"uint8 (N, {size}, {size}, 3) (or (N, {size}, {size}) grayscale)"
    if array.ndim == 3 and array.shape[1:] == (size, size):
        array = array[..., None]
    if (
        array.dtype != np.uint8
        or array.ndim != 4
        or array.shape[1:3] != (size, size)
        or array.shape[3] not in (1, 3)
    ):
        raise DataError(f"{path}: {key} is {array.dtype} {array.shape}; expected {expected}")
    return array


def _check_labels(
    array: np.ndarray, key: str, n_images: int, spec: DatasetSpec, path: Path
) -> np.ndarray:
    shape = array.shape
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or array.shape[0] != n_images:
        raise DataError(
            f"{path}: {key} has shape {shape}; "
            f"expected ({n_images}, 1) or ({n_images},), one label per image"
        )
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise DataError(f"{path}: {key} has dtype {array.dtype}; expected integer class ids")
    labels = array.astype(np.int64)
    bad = labels[(labels < 0) | (labels >= spec.n_classes)]
    if bad.size:
        shown = ", ".join(map(str, np.unique(bad)[:5].tolist()))
        raise DataError(
            f"{path}: {key} holds class ids {shown} outside 0..{spec.n_classes - 1}, the {spec.n_classes} "
            f"classes of {spec.name}"
        )
    return labels


class _CacheUnwritable(DataError):
    """The extraction cache cannot be written (read-only data root)."""


def _extract_member(path: Path, key: str, cache_dir: Path) -> np.ndarray:
    """Copy ``key.npy`` out of the archive once (streamed, atomically) and memory-map it."""
    target = cache_dir / f"{key}.npy"
    if target.is_file():
        try:
            return np.load(target, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError):
            target.unlink(missing_ok=True)  # a damaged extraction: redo it
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{key}.", suffix=".part")
    except OSError as exc:
        raise _CacheUnwritable(
            f"cannot write the extraction cache {cache_dir} ({exc.strerror or exc}); "
            "make the data root writable"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
                    shutil.copyfileobj(member, out, _CHUNK)
            except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as exc:
                raise _corrupt(path, exc) from exc
        os.replace(tmp, target)
    except OSError as exc:
        raise DataError(
            f"could not extract {key} of {path} to {target} ({exc.strerror or exc}); "
            "check free disk space"
        ) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:
        return np.load(target, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _corrupt(path, exc) from exc


def _images(archive: Any, path: Path, key: str, cache_dir: Path, size: int) -> np.ndarray:
    """Memory-mapped images where possible; in memory for small sizes when the cache is read-only."""
    try:
        return _extract_member(path, key, cache_dir)
    except _CacheUnwritable:
        if size in MMAP_SIZES:
            raise
        return archive[key]


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _read_splits(
    spec: DatasetSpec, size: int, path: Path, root: Path, md5: str
) -> tuple[dict[str, ImageSplit | None], list[str]]:
    """Read and validate every split of the archive; the missing ones come back as ``None``."""
    cache_dir = root / CACHE_DIRNAME / f"{path.stem}-{md5[:12]}"
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _corrupt(path, exc) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path} is a single array, not a MedMNIST .npz archive with "
            f"{{train,val,test}}_{{images,labels}}; delete it and fetch it again"
        )
    splits: dict[str, ImageSplit | None] = {}
    missing: list[str] = []
    with archive:
        keys = set(archive.files)
        for split in SPLITS:
            image_key, label_key = f"{split}_images", f"{split}_labels"
            present = [k for k in (image_key, label_key) if k in keys]
            if split == "train" and len(present) < 2:
                absent = image_key if image_key not in keys else label_key
                raise DataError(
                    f"{path} has no {absent} array (keys: {', '.join(sorted(keys)) or 'none'}); "
                    "expected train_images and train_labels"
                )
            if not present:
                splits[split] = None
                missing.append(split)
                continue
            if len(present) == 1:
                absent = label_key if present[0] == image_key else image_key
                raise DataError(
                    f"{path} has {present[0]} but no {absent}; expected both for the {split} split"
                )
            try:
                raw_labels = archive[label_key]
                raw_images = _images(archive, path, image_key, cache_dir, size)
            except _READ_ERRORS as exc:
                raise _corrupt(path, exc) from exc
            images = _check_images(raw_images, image_key, size, path)
            source = _check_labels(raw_labels, label_key, images.shape[0], spec, path)
            if split == "train" and images.shape[0] == 0:
                raise DataError(
                    f"{path}: train_images is empty; expected at least one training image"
                )
            splits[split] = ImageSplit(
                images=_to_tensor(images),
                labels=torch.from_numpy(spec.binarise(source)),
                source_labels=torch.from_numpy(source),
            )
    return splits, missing


def _missing_message(spec: DatasetSpec, size: int, path: Path, root: Path) -> str:
    return (
        f"{spec.name} at {size}px not found: expected {path}; run "
        f"`fedunlearn data fetch --dataset {spec.name} --size {size} --data-root {root}` or put the official file there"
    )


def _provenance_notes(
    spec: DatasetSpec,
    splits: dict[str, ImageSplit | None],
    missing: list[str],
    md5: str,
    official_md5: str,
    filename: str,
) -> list[str]:
    """What sets the file apart from the official one: its MD5, absent splits, unofficial split sizes."""
    notes: list[str] = []
    if md5 != official_md5:
        notes.append(
            f"md5 {md5} differs from the official {official_md5}: not the official {filename}"
        )
    if missing:
        notes.append(f"no {' or '.join(missing)} split in the file")
    for split_name, split in splits.items():
        expected = spec.n_samples.get(split_name)
        if split is not None and expected is not None and len(split) != expected:
            notes.append(f"{split_name} has {len(split)} images, the official file {expected}")
    return notes


def load_dataset(
    name: str,
    size: int = 28,
    root: str | os.PathLike[str] | None = None,
    *,
    synthetic: SyntheticSpec | None = None,
) -> BinaryDataset:
    """Load a dataset for the binary malignancy task.

    Parameters
    ----------
    name : str
        ``"dermamnist"``, ``"pathmnist"`` or ``"synthetic"``.
    size : int
        Image size, one of 28, 64, 128, 224. Ignored for ``"synthetic"``
        when ``synthetic`` is given (its own ``size`` wins).
    root : path, optional
        Folder with the archives (see :func:`resolve_root`).
    synthetic : SyntheticSpec, optional
        Generator settings for ``"synthetic"``; default ``SyntheticSpec(size=size)``.

    Returns
    -------
    BinaryDataset
        Splits absent from the file are ``None`` (the provenance note lists them).
        Repeated loads of an unchanged file return the same tensors.

    Raises
    ------
    DataError
        Missing, damaged or malformed file; unknown dataset or size.

    Warns
    -----
    UnofficialDataWarning
        When the file's MD5 differs from the official one (``provenance.official`` is False).
    """
    key = str(name).strip().lower()
    if key == "synthetic":
        return _synthetic.make_synthetic(
            synthetic if synthetic is not None else SyntheticSpec(size=size)
        )
    spec = get_dataset_spec(key)
    filename = spec.filename(size)
    size = int(size)
    root_path = resolve_root(root)
    path = root_path / filename
    if not path.is_file():
        raise DataError(_missing_message(spec, size, path, root_path))
    try:
        md5 = file_md5(path)
    except OSError as exc:
        raise DataError(
            f"cannot read {path} ({exc.strerror or exc}); check its permissions"
        ) from exc
    official_md5 = spec.md5(size)
    cache_key = (*_stat_key(path), spec.name, size)
    with _LOCK:
        cached = _SPLIT_CACHE.get(cache_key)
        if cached is None:
            cached = _read_splits(spec, size, path, root_path, md5)
            _SPLIT_CACHE[cache_key] = cached
    splits, missing = cached
    official = md5 == official_md5
    notes = _provenance_notes(spec, splits, missing, md5, official_md5, filename)
    if not official:
        warnings.warn(
            UnofficialDataWarning(
                f"{path} is not the official {filename}: md5 {md5}, official {official_md5}; "
                "results from it are not on the official data (provenance.official=False)"
            ),
            stacklevel=2,
        )
    provenance = DataProvenance(
        dataset=spec.name,
        size=size,
        path=str(path),
        md5=md5,
        official_md5=official_md5,
        official=official,
        synthetic=False,
        note="; ".join(notes),
    )
    return BinaryDataset(
        name=spec.name,
        size=size,
        train=splits["train"],  # type: ignore[arg-type]  # always present (checked on read)
        val=splits["val"],
        test=splits["test"],
        provenance=provenance,
    )
