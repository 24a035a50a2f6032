"""Data layer: dataset contracts, loading, fetching, synthetic data, forget sets and partitions."""

from .fetch import fetch
from .forget import FORGET_MODES, ForgetSpec, select_forget
from .holdout import carve_holdout
from .loading import (
    BinaryDataset,
    DataProvenance,
    ImageSplit,
    UnofficialDataWarning,
    clear_cache,
    file_md5,
    load_dataset,
    resolve_root,
)
from .partition import (
    PARTITION_NAMES,
    PARTITIONERS,
    get_partitioner,
    partition,
    register_partitioner,
)
from .specs import DATASET_NAMES, DATASETS, SIZES, DataError, DatasetSpec, get_dataset_spec
from .synthetic import SyntheticSpec, make_synthetic

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "FORGET_MODES",
    "PARTITIONERS",
    "PARTITION_NAMES",
    "SIZES",
    "BinaryDataset",
    "DataError",
    "DataProvenance",
    "DatasetSpec",
    "ForgetSpec",
    "ImageSplit",
    "SyntheticSpec",
    "UnofficialDataWarning",
    "carve_holdout",
    "clear_cache",
    "fetch",
    "file_md5",
    "get_dataset_spec",
    "get_partitioner",
    "load_dataset",
    "make_synthetic",
    "partition",
    "register_partitioner",
    "resolve_root",
    "select_forget",
]
