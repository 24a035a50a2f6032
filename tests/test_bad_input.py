"""Bad input, in one place: one line naming the problem and the fix, exit code 2, nothing half-written.

The CLI turns every :class:`fedunlearn.errors.FedunlearnError` (and ``ValueError``) into
``fedunlearn: error: <one line>`` on stderr and exit code 2 (``fedunlearn/cli.py`` ``main``).
Nothing here starts Ray: the ``no_ray`` fixture makes any start of the simulation engine fail the
test, so every error below is proven to be caught before Ray starts.

Where each item of the issue is covered (existing tests are not duplicated here):

1. missing data file
   - ``tests/data/test_loading.py::test_missing_file_names_path_and_fetch_command`` (message, one line)
   - ``tests/cli/test_errors.py::test_missing_data_file`` (``centralized``: exit 2, one line, no ``--out``)
   - here: ``test_run_missing_data_file_creates_no_run_dir``, ``test_python_m_fedunlearn_exit_code_and_one_line``
2. truncated or corrupt ``.npz``
   - ``tests/data/test_loading.py::test_truncated_archive_is_a_data_error`` (needs ../shared/data),
     ``::test_garbage_and_single_array_files_are_data_errors``, ``::test_damaged_extraction_is_redone``
   - ``tests/cli/test_errors.py::test_corrupt_npz`` (``centralized``: exit 2, one line)
   - here: ``test_corrupt_npz_writes_nothing`` (``centralized`` and ``run``; garbage, truncated, bad CRC:
     no output, no cache file left in the data root), ``test_centralized_error_leaves_existing_out_untouched``
3. wrong array shapes or label values
   - ``tests/data/test_loading.py::test_wrong_image_shape_is_a_data_error``, ``::test_float_images_are_a_data_error``,
     ``::test_out_of_range_labels_are_a_data_error``, ``::test_label_count_mismatch_is_a_data_error``,
     ``::test_missing_train_key_is_a_data_error``, ``::test_half_a_split_is_a_data_error`` (library level)
   - here: ``test_malformed_arrays_write_nothing`` (through ``centralized`` and ``run``),
     ``test_centralized_without_a_test_split_writes_nothing``
4. MD5 mismatch: a warning, and the md5 with ``official: false`` in the manifest
   - ``tests/data/test_loading.py::test_jpeg_dermamnist_binarised_counts_and_provenance`` (warning and
     provenance; needs ../shared/data)
   - here: ``test_unofficial_md5_warns_and_is_recorded_in_the_manifest`` (a generated file through
     ``centralized``: warning, manifest ``data.md5`` / ``data.official``, summary)
5. invalid scenario values
   - ``tests/scenario/test_validation.py::test_bad_scenario_gives_one_exact_line`` (every section, exact line),
     ``::test_validate_command_prints_the_line_and_exits_2``, ``::test_bad_overrides_are_one_line``,
     ``tests/cli/test_errors.py::test_validate_reports_bad_scenario``
   - here: ``test_invalid_scenario_value_writes_nothing`` (``validate`` and ``run``: exit 2, one exact line,
     no run directory), ``test_bad_yaml_in_set_is_one_line``
6. unknown method, model, strategy, partitioner
   - scenario: ``tests/scenario/test_validation.py::test_bad_scenario_gives_one_exact_line``
     (ids ``deletion.method``, ``model``, ``training.strategy``, ``sites.partition``)
   - sweep grid values: ``tests/sweeps/test_grid.py::test_cli_refuses_a_bad_grid_with_one_line_and_writes_nothing``
     (``--grid deletion.method=rl,foo``: exit 2, one line, no sweep folder),
     ``::test_a_bad_value_names_its_grid_point_on_one_line``
   - here: ``test_invalid_scenario_value_writes_nothing`` (the same through ``run --set``),
     ``test_unknown_choice_flag_names_the_choices``
     (``centralized --methods nope`` etc.), ``test_unknown_choice_flag_error_is_one_line``
7. forget fraction outside (0, 1]
   - ``tests/data/test_forget.py::test_fraction_validation`` (0, 0.0, 1.5, -0.1 at the library level)
   - ``tests/cli/test_errors.py::test_forget_fraction_out_of_range`` (``centralized --forget-ratio 1.5``)
   - ``tests/scenario/test_validation.py::test_bad_scenario_gives_one_exact_line`` (id
     ``deletion.requests[0].fraction``: 1.5; ``deletion.stochastic.*``)
   - here: ``test_centralized_forget_ratio_out_of_range_writes_nothing`` (0, -0.2, nan),
     ``test_invalid_scenario_value_writes_nothing`` (fraction 0, -0.1, 1.5 through ``validate``/``run``)
8. deletion request for a site that does not exist, or a round past the end
   - ``tests/scenario/test_validation.py::test_bad_scenario_gives_one_exact_line`` (ids
     ``deletion.requests[0].site``, ``deletion.requests[1].round``, ``deletion.stochastic.sites[1]``,
     ``deletion.stochastic.end_round``), ``tests/cli/test_errors.py::test_validate_reports_bad_scenario``
   - here: ``test_invalid_scenario_value_writes_nothing`` (site 2 of 2, site -1, round 3 of 2, through ``run``)

Checked before Ray starts and before anything is written: ``test_run_checks_data_and_partition_before_ray``
(a file without a val split, or more sites than images).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.cli import main
from fedunlearn.data import UnofficialDataWarning

REPO = Path(__file__).resolve().parents[1]
DERMA_OFFICIAL_MD5 = "0744692d530f8e62ec473284d019b0c7"
DATA_DAMAGED = "is damaged or not a MedMNIST .npz"
FIX_DAMAGED = "delete it and fetch it again"

SCENARIO = """\
name: bad-input
seed: 0
data: {dataset: dermamnist, size: 28}
sites: {count: 2}
training: {rounds: 2, batch_size: 16}
deletion:
  method: salun-cra
  unlearn: {epochs: 1}
  requests: [{round: 1, site: 0, fraction: 0.2}]
"""


# --------------------------------------------------------------------------- helpers
def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in-process; return (exit code, stderr stripped)."""
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def assert_one_line_error(code: int, err: str, *phrases: str) -> None:
    """Exit code 2, exactly one stderr line ``fedunlearn: error: ...`` containing every phrase."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err}"
    assert lines[0].startswith("fedunlearn: error: "), err
    for phrase in phrases:
        assert phrase in lines[0], f"{phrase!r} not in {lines[0]!r}"


def files_under(folder: Path) -> set[Path]:
    """Every regular file below ``folder`` (relative paths)."""
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def tiny_arrays(
    n_train: int = 60, n_val: int = 20, n_test: int = 30, size: int = 28
) -> dict[str, np.ndarray]:
    """A MedMNIST-layout archive's arrays: uint8 (N, size, size, 3) images, (N, 1) labels cycling 0..6."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n:
            arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
            arrays[f"{split}_labels"] = (np.arange(n) % 7).astype(np.uint8)[:, None]
    return arrays


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty data root."""
    path = tmp_path / "data-root"
    path.mkdir()
    return path


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    return path


def command(kind: str, scenario_file: Path, root: Path, out: Path) -> list[str]:
    """``centralized`` or ``run`` on dermamnist 28 px from ``root`` into ``out`` (tiny settings)."""
    if kind == "centralized":
        return [
            "centralized",
            "--dataset",
            "dermamnist",
            "--data-root",
            str(root),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--methods",
            "ft",
            "--unlearn-epochs",
            "1",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--quiet",
        ]
    return ["run", str(scenario_file), "--data-root", str(root), "--out", str(out), "--quiet"]


@pytest.fixture(autouse=True)
def _fresh_data_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Loaded archives are cached per process; start and end every test without them (and without
    FEDUNLEARN_DEBUG, which makes the CLI re-raise instead of printing its one line)."""
    from fedunlearn.data import clear_cache

    monkeypatch.delenv("FEDUNLEARN_DEBUG", raising=False)
    clear_cache()
    yield
    clear_cache()


# --------------------------------------------------------------------------- 1. missing data file
def test_run_missing_data_file_creates_no_run_dir(
    scenario_file: Path, root: Path, tmp_path: Path, capsys, no_ray
) -> None:
    out = tmp_path / "run"
    code, err = cli(command("run", scenario_file, root, out), capsys)
    assert_one_line_error(
        code,
        err,
        f"dermamnist at 28px not found: expected {root / 'dermamnist.npz'}",
        f"`fedunlearn data fetch --dataset dermamnist --size 28 --data-root {root}`",
    )
    assert not out.exists()
    assert files_under(root) == set()


def test_a_ray_folder_too_long_for_its_sockets_is_refused_first(
    scenario_file: Path, root: Path, tmp_path: Path, capsys, no_ray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's Unix socket paths must fit in 107 bytes; a long FEDUNLEARN_RAY_TMP would crash the engine later."""
    long_dir = tmp_path / ("x" * 40)
    monkeypatch.setenv("FEDUNLEARN_RAY_TMP", str(long_dir))
    out = tmp_path / "run"
    code, err = cli(command("run", scenario_file, root, out), capsys)
    assert_one_line_error(
        code,
        err,
        f"FEDUNLEARN_RAY_TMP={long_dir} is too long for Ray's socket paths",
        "use a shorter folder, e.g. /tmp",
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["centralized", "--data-root", "{root}", "--out", "{out}"],
        ["validate", "{bad_scenario}"],
    ],
    ids=["centralized-missing-data", "validate-bad-scenario"],
)
def test_python_m_fedunlearn_exit_code_and_one_line(
    argv: list[str], root: Path, tmp_path: Path
) -> None:
    """The real process: ``python -m fedunlearn`` exits 2 with one stderr line and no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {rounds: 0}\n")
    out = tmp_path / "out"
    args = [a.format(root=root, out=out, bad_scenario=bad) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "fedunlearn", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fedunlearn: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- 2. corrupt or truncated archives
def _garbage(data: bytes) -> bytes:
    return b"PK\x03\x04 this is not a zip archive " * 20


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _bad_crc(data: bytes) -> bytes:
    """Flip bytes inside the first image array (after its .npy header): the zip directory stays readable."""
    corrupted = bytearray(data)
    middle = len(data) // 4
    corrupted[middle : middle + 64] = bytes(b ^ 0xFF for b in corrupted[middle : middle + 64])
    return bytes(corrupted)


@pytest.mark.parametrize(
    "damage", [_garbage, _truncated, _bad_crc], ids=["garbage", "truncated", "bad-crc"]
)
@pytest.mark.parametrize("kind", ["centralized", "run"])
def test_corrupt_npz_writes_nothing(
    kind: str, damage, scenario_file: Path, root: Path, tmp_path: Path, capsys, no_ray
) -> None:
    path = root / "dermamnist.npz"
    path.write_bytes(damage(npz_bytes(**tiny_arrays())))
    out = tmp_path / "out"
    code, err = cli(command(kind, scenario_file, root, out), capsys)
    assert_one_line_error(code, err, f"{path} {DATA_DAMAGED}", FIX_DAMAGED)
    assert not out.exists()
    # nothing half-extracted is left in the data root: no .npy, no .part (an empty cache folder may remain)
    assert files_under(root) == {Path("dermamnist.npz")}


def test_centralized_error_leaves_existing_out_untouched(
    root: Path, tmp_path: Path, capsys
) -> None:
    (root / "dermamnist.npz").write_bytes(_truncated(npz_bytes(**tiny_arrays())))
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.csv").write_text("precious\n")
    code, err = cli(command("centralized", tmp_path / "unused.yaml", root, out), capsys)
    assert_one_line_error(code, err, DATA_DAMAGED, FIX_DAMAGED)
    assert files_under(out) == {Path("metrics.csv")}
    assert (out / "metrics.csv").read_text() == "precious\n"


# --------------------------------------------------------------------------- 3. wrong shapes and labels
def _wrong_shape(a: dict[str, np.ndarray]) -> None:
    a["train_images"] = a["train_images"][:, :, :27]


def _float_images(a: dict[str, np.ndarray]) -> None:
    a["train_images"] = a["train_images"].astype(np.float32)


def _label_out_of_range(a: dict[str, np.ndarray]) -> None:
    a["train_labels"][3] = 9


def _negative_label(a: dict[str, np.ndarray]) -> None:
    a["test_labels"] = a["test_labels"].astype(np.int64)
    a["test_labels"][0] = -1


def _label_count(a: dict[str, np.ndarray]) -> None:
    a["val_labels"] = a["val_labels"][:-1]


def _no_train(a: dict[str, np.ndarray]) -> None:
    del a["train_images"], a["train_labels"]


def _half_split(a: dict[str, np.ndarray]) -> None:
    del a["test_labels"]


MALFORMED = [
    (_wrong_shape, "train_images is uint8 (60, 28, 27, 3); expected uint8 (N, 28, 28, 3)"),
    (_float_images, "train_images is float32 (60, 28, 28, 3); expected uint8 (N, 28, 28, 3)"),
    (
        _label_out_of_range,
        "train_labels holds class ids 9 outside 0..6, the 7 classes of dermamnist",
    ),
    (_negative_label, "test_labels holds class ids -1 outside 0..6"),
    (_label_count, "val_labels has shape (19, 1); expected (20, 1) or (20,), one label per image"),
    (
        _no_train,
        "has no train_images array (keys: test_images, test_labels, val_images, val_labels); "
        "expected train_images and train_labels",
    ),
    (_half_split, "has test_images but no test_labels; expected both for the test split"),
]


@pytest.mark.parametrize(
    ("spoil", "phrase"), MALFORMED, ids=[f.__name__.strip("_") for f, _ in MALFORMED]
)
@pytest.mark.parametrize("kind", ["centralized", "run"])
def test_malformed_arrays_write_nothing(
    kind: str, spoil, phrase: str, scenario_file: Path, root: Path, tmp_path: Path, capsys, no_ray
) -> None:
    arrays = tiny_arrays()
    spoil(arrays)
    path = root / "dermamnist.npz"
    path.write_bytes(npz_bytes(**arrays))
    out = tmp_path / "out"
    code, err = cli(command(kind, scenario_file, root, out), capsys)
    assert_one_line_error(code, err, str(path), phrase)
    assert not out.exists()


def test_centralized_without_a_test_split_writes_nothing(
    root: Path, tmp_path: Path, capsys
) -> None:
    (root / "dermamnist.npz").write_bytes(npz_bytes(**tiny_arrays(n_test=0)))
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        code, err = cli(command("centralized", tmp_path / "unused.yaml", root, out), capsys)
    assert_one_line_error(
        code,
        err,
        f"dermamnist 28px ({root / 'dermamnist.npz'}) has no test split",
        "`fedunlearn data fetch --dataset dermamnist --size 28`",
    )
    assert not out.exists()


# --------------------------------------------------------------------------- 4. MD5 mismatch
def test_unofficial_md5_warns_and_is_recorded_in_the_manifest(
    root: Path, tmp_path: Path, capsys
) -> None:
    path = root / "dermamnist.npz"
    path.write_bytes(npz_bytes(**tiny_arrays()))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    out = tmp_path / "out"
    with pytest.warns(UnofficialDataWarning) as record:
        code = main(command("centralized", tmp_path / "unused.yaml", root, out))
    assert code == 0  # a warning, not an error
    message = str(next(w.message for w in record if issubclass(w.category, UnofficialDataWarning)))
    assert "\n" not in message
    assert (
        f"{path} is not the official dermamnist.npz: md5 {md5}, official {DERMA_OFFICIAL_MD5}"
        in message
    )
    assert "provenance.official=False" in message
    manifest = json.loads((out / "manifest.json").read_text())
    data = manifest["data"]
    assert (
        data["md5"] == md5
        and data["official"] is False
        and data["official_md5"] == DERMA_OFFICIAL_MD5
    )
    assert data["synthetic"] is False and data["path"] == str(path)
    assert f"differs from the official {DERMA_OFFICIAL_MD5}" in data["note"]
    summary = (out / "summary.md").read_text()
    assert md5 in summary and "NOT the official file" in summary
    capsys.readouterr()


# --------------------------------------------------------------------------- 5, 6, 7, 8. scenario values
REQ = "deletion.requests[0]"
BAD_VALUES = [
    ("training.rounds=0", "training.rounds: bad value 0; allowed: an integer in [1, 10000]"),
    (
        "training.strategy=nope",
        "training.strategy: bad value 'nope'; allowed: one of fedavg, fedprox, fedadam, fedyogi, fedmedian",
    ),
    (
        "sites.partition=nope",
        "sites.partition: bad value 'nope'; allowed: one of iid, dirichlet, quantity, explicit",
    ),
    (
        "deletion.method=nope",
        "deletion.method: bad value 'nope'; allowed: one of retrain, ft, ga, rl, salun, salun-cra",
    ),
    ("model=nope", "model: bad value 'nope'; allowed: one of resnet18, small-cnn"),
    (
        "data.dataset=nope",
        "data.dataset: bad value 'nope'; allowed: one of dermamnist, pathmnist, synthetic",
    ),
    (f"{REQ}.fraction=0", f"{REQ}.fraction: bad value 0; allowed: a number in (0, 1]"),
    (f"{REQ}.fraction=-0.1", f"{REQ}.fraction: bad value -0.1; allowed: a number in (0, 1]"),
    (f"{REQ}.fraction=1.5", f"{REQ}.fraction: bad value 1.5; allowed: a number in (0, 1]"),
    (
        f"{REQ}.site=2",
        f"{REQ}.site: bad value 2; allowed: a site index in [0, 1] (sites.count is 2)",
    ),
    (f"{REQ}.site=-1", f"{REQ}.site: bad value -1; allowed: "),
    (
        f"{REQ}.round=3",
        f"{REQ}.round: bad value 3; allowed: a round in [1, 2] (training.rounds is 2)",
    ),
    ("deletion.stochastic={rate: 0.5, fraction: 0}", "deletion.stochastic.fraction"),
]


@pytest.mark.parametrize(
    ("override", "expected"),
    BAD_VALUES,
    ids=[o.split("=")[0] + "=" + o.split("=")[1][:8] for o, _ in BAD_VALUES],
)
@pytest.mark.parametrize("kind", ["validate", "run"])
def test_invalid_scenario_value_writes_nothing(
    kind: str, override: str, expected: str, scenario_file: Path, tmp_path: Path, capsys, no_ray
) -> None:
    out = tmp_path / "run"
    argv = [kind, str(scenario_file), "--set", override] + (
        ["--out", str(out)] if kind == "run" else []
    )
    code, err = cli(argv, capsys)
    assert_one_line_error(code, err, f"fedunlearn: error: {scenario_file}: {expected}")
    assert not out.exists()


@pytest.mark.parametrize("override", ["seed=[1", "name={a: b"])
def test_bad_yaml_in_set_is_one_line(override: str, scenario_file: Path, capsys) -> None:
    code, err = cli(["validate", str(scenario_file), "--set", override], capsys)
    assert_one_line_error(code, err, "--set", override.split("=")[0])


# --------------------------------------------------------------------------- 6. CLI choice flags
CHOICE_FLAGS = [
    (
        ["centralized", "--methods", "nope"],
        "argument --methods: invalid choice: 'nope'",
        "salun-cra",
    ),
    (
        ["centralized", "--method", "nope"],
        "argument --methods: invalid choice: 'nope'",
        "salun-cra",
    ),
    (["centralized", "--model", "nope"], "argument --model: invalid choice: 'nope'", "small-cnn"),
    (
        ["centralized", "--dataset", "nope"],
        "argument --dataset: invalid choice: 'nope'",
        "dermamnist",
    ),
    (
        ["centralized", "--forget-mode", "nope"],
        "argument --forget-mode: invalid choice: 'nope'",
        "balanced",
    ),
    (["centralized", "--size", "32"], "argument --size: invalid choice: 32", "224"),
    (
        ["data", "fetch", "--dataset", "synthetic"],
        "argument --dataset: invalid choice: 'synthetic'",
        "pathmnist",
    ),
]


@pytest.mark.parametrize(
    ("argv", "phrase", "choice"), CHOICE_FLAGS, ids=[" ".join(a[-2:]) for a, _, _ in CHOICE_FLAGS]
)
def test_unknown_choice_flag_names_the_choices(
    argv: list[str], phrase: str, choice: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    if argv[0] == "centralized":
        argv = [*argv, "--out", str(out)]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert phrase in last and "(choose from" in last and choice in last, last
    assert not out.exists()


def test_unknown_choice_flag_error_is_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["centralized", "--methods", "nope", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1, err


# --------------------------------------------------------------------------- 7. forget fraction (centralized)
@pytest.mark.parametrize("ratio", ["0", "-0.2", "nan"])
def test_centralized_forget_ratio_out_of_range_writes_nothing(
    ratio: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    code, err = cli(
        ["centralized", "--dataset", "synthetic", "--forget-ratio", ratio, "--out", str(out)],
        capsys,
    )
    shown = str(float(ratio)) if not math.isnan(float(ratio)) else "nan"
    assert_one_line_error(code, err, f"forget fraction must be in (0, 1], got {shown}")
    assert not out.exists()


# --------------------------------------------------------------------------- checked only after Ray starts
@pytest.mark.parametrize("case", ["no-val-split", "more-sites-than-images"])
def test_run_checks_data_and_partition_before_ray(
    case: str, scenario_file: Path, root: Path, tmp_path: Path, capsys, no_ray
) -> None:
    out = tmp_path / "run"
    argv = command("run", scenario_file, root, out)
    if case == "no-val-split":
        (root / "dermamnist.npz").write_bytes(npz_bytes(**tiny_arrays(n_val=0)))
    else:
        argv += [
            "--set",
            "data.dataset=synthetic",
            "--set",
            "data.synthetic.n_train=10",
            "--set",
            "sites.count=20",
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        code, err = cli(argv, capsys)
    assert_one_line_error(code, err)
    assert not out.exists()
