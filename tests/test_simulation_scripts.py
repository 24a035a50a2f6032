"""The scripts of ``simulations/`` (the examples users copy) keep working on the public API.

Each script answers ``--help`` (in a fresh interpreter, as a user runs it); the
paper-scale ablation prints its plan with ``--dry-run`` without data; the
single-site study runs end to end on synthetic data (in process, one job).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

import fedunlearn as fu

SIMULATIONS = Path(__file__).resolve().parent.parent / "simulations"
SCRIPTS = [
    "study_federated.py",
    "study_single_site.py",
    "study_paper_scale.py",
    "whatif_batched.py",
    "whatif_prevalence.py",
    "stability.py",
]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"simulations_{name[:-3]}", SIMULATIONS / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_shell_script_is_left_but_the_gpu_check() -> None:
    assert sorted(p.name for p in SIMULATIONS.glob("*.sh")) == ["gpu_check.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SIMULATIONS / script), "--help"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    positional = "scenario" if script == "stability.py" else "DATA_ROOT"
    assert done.stdout.startswith("usage: ") and positional in done.stdout


def test_paper_scale_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ablation"
    assert _load("study_paper_scale.py").main(["--dry-run", str(tmp_path), str(out)]) == 0
    printed = capsys.readouterr().out
    # 32 (method, setting) units x 5 seeds x 2 ratios; the study's estimate of its own length
    assert printed.startswith("320 units (+ 5 original models)"), printed
    assert "about 1.2 h" in printed and "--model resnet18" in printed
    assert not out.exists()


def test_paper_scale_without_the_64_px_file_says_how_to_fetch_it(tmp_path: Path) -> None:
    fetch = f"fetch it with: fedunlearn data fetch --dataset dermamnist --size 64 --data-root {tmp_path}"
    with pytest.raises(fu.FedunlearnError, match=re.escape(fetch) + "$"):
        _load("study_paper_scale.py").main([str(tmp_path), str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_single_site_study_runs_end_to_end_on_synthetic_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _load("study_single_site.py")
    argv = [str(tmp_path), str(tmp_path / "out"), "--dataset", "synthetic", "--seeds", "0"]
    argv += ["--ratios", "0.5", "--methods", "ft", "--epochs", "1"]
    argv += ["--unlearn-epochs", "1", "--jobs", "1"]
    assert script.main(argv) == 0
    metrics = pd.read_csv(tmp_path / "out" / "centralized-50" / "metrics.csv")
    assert set(metrics["method"]) == {"original", "ft"}
    assert set(metrics["dataset"]) == {"synthetic"}
    assert "| ft |" in capsys.readouterr().out  # the summary is printed


def test_round_effects_between_two_grid_values_pairs_by_seed(tmp_path: Path, capsys) -> None:
    """``--between KEY=A,B``: per method, B minus A at the round, over the seeds both values have."""
    fnr = {("salun-cra", "immediate"): [0.2, 0.3], ("salun-cra", "batched"): [0.1, 0.25]}
    points = []
    for (method, policy), values in fnr.items():
        for seed, value in enumerate(values):
            run = f"runs/{method}-{policy}-{seed}"
            (tmp_path / run).mkdir(parents=True)
            rows = ["round,site,phase,method,metric,value,request"]
            rows += [f"{r},global,test,{method},fnr,{value + (r < 12)}," for r in (11, 12)]
            (tmp_path / run / "metrics.csv").write_text("\n".join(rows) + "\n")
            points.append(
                {
                    "assignments": {
                        "deletion.method": method,
                        "deletion.policy": policy,
                        "seed": seed,
                    },
                    "run_dir": run,
                }
            )
    (tmp_path / "sweep.json").write_text(json.dumps({"points": points}))
    module = _load("round_effects.py")
    code = module.main(
        [
            str(tmp_path),
            "--round",
            "12",
            "--metrics",
            "fnr",
            "--between",
            "deletion.policy=immediate,batched",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("| salun-cra | fnr")]
    assert "0.250 ± 0.071" in row and "0.175 ± 0.106" in row  # immediate, batched at round 12
    assert "-0.075" in row  # the mean of (0.1 - 0.2, 0.25 - 0.3)
    assert (
        module.main([str(tmp_path), "--round", "12", "--between", "deletion.policy=immediate"]) == 2
    )
