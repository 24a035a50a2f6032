"""``fedunlearn bench --quick`` end to end: one table, every required figure present and finite.

No timing is asserted: on a shared 2-core machine the figures are noise; the
test checks that every benchmark ran and reported what it promises.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from fedunlearn.cli import main

pytestmark = pytest.mark.slow  # make test-all; CI runs make test

SHARED_DERMA = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dermamnist_28_jpeg.npz"
)
REQUIRED = (
    "train_vs_bare_ratio",
    "train_vs_medmnist_loader_ratio",
    "round_overhead_s",
    "erasure_wall_ratio",
    "erasure_images_ratio",
    "peak_rss_mb",
    "flower_round_overhead_s",
    "noop_round_s",
    "round_overhead_vs_flower_ratio",
    "server_step_cpu_s_growth_ratio",
)


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One ``--quick`` run (with the real DermaMNIST copy where it sits beside the checkout)."""
    import contextlib
    import io

    base = tmp_path_factory.mktemp("bench")
    argv = ["bench", "--quick", "--quiet", "--out", str(base / "out")]
    if SHARED_DERMA.is_file():
        root = base / "root"
        root.mkdir()
        (root / "dermamnist.npz").symlink_to(SHARED_DERMA)
        argv += ["--data-root", str(root)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return base / "out", printed.getvalue()


def test_csv_has_the_columns_and_every_required_metric(quick_bench: tuple[Path, str]) -> None:
    out, _ = quick_bench
    table = pd.read_csv(out / "bench.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == ["benchmark", "variant", "metric", "value", "unit"]
    for metric in REQUIRED:
        rows = table[table["metric"] == metric]
        assert len(rows) >= 1, metric
        assert all(math.isfinite(float(v)) for v in rows["value"]), (metric, rows)
    # The raw figures beside the ratios: images/s of every variant, seconds, MB, the machine.
    throughput = table[
        (table["benchmark"] == "train_throughput") & (table["metric"] == "images_per_s")
    ]
    assert {"engine", "bare", "bare-noaug"} <= set(throughput["variant"]) and len(throughput) == 4
    assert {
        "cpu_count",
        "torch_threads",
        "retrain_wall_s",
        "salun_cra_wall_s",
        "server_eval_s",
    } <= set(table["metric"])
    peaks = table[table["metric"] == "peak_rss_mb"]
    assert any(v.startswith("server") for v in peaks["variant"]) and any(
        v.startswith("client actor") for v in peaks["variant"]
    )
    assert (peaks["value"] > 0).all()
    # the minimal Flower app ran at the quick size, the server step at rounds 5 and 12
    assert set(table.loc[table["metric"] == "flower_round_overhead_s", "variant"]) == {"4"}
    assert {"server_step_cpu_s_round5", "server_step_cpu_s_round12"} <= set(table["metric"])
    # the sweep comparison is not asked for under --quick: a row that says so, with no value
    (sweep,) = table[table["metric"] == "sweep_wall_ratio"].itertuples()
    assert math.isnan(float(sweep.value)) and sweep.unit.startswith("not measured")


def test_the_table_is_printed_and_saved(quick_bench: tuple[Path, str]) -> None:
    out, printed = quick_bench
    assert "erasure_wall_ratio" in printed and "round_overhead_s = (train-phase wall" in printed
    assert (out / "bench.txt").read_text().strip() in printed
    assert (out / "runs").is_dir() and len(
        list((out / "runs").iterdir())
    ) == 2  # salun-cra and retrain


def test_refuses_a_used_output_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bench.csv").write_text("old")
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and err.count("\n") == 1
