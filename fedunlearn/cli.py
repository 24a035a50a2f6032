"""``fedunlearn`` command line: parse once at the edge, call plain functions."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from fedunlearn.cli_study import add_data_root as _add_data_root
from fedunlearn.errors import FedunlearnError


def _cmd_fetch(args: argparse.Namespace) -> int:
    from fedunlearn.data import fetch, file_md5, get_dataset_spec, resolve_root

    spec = get_dataset_spec(args.dataset)
    path = resolve_root(args.data_root) / spec.filename(args.size)
    if args.if_present_ok and path.is_file():
        official = file_md5(path) == spec.md5(args.size)
        print(
            f"{path} (present; {'official' if official else 'NOT the official file: results will say so'})"
        )
        return 0
    print(fetch(args.dataset, args.size, args.data_root))
    return 0


def _scenario_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument(
        "scenario",
        nargs="?" if optional else None,
        help="scenario YAML file, e.g. configs/quickstart.yaml",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set training.rounds=5 (repeatable)",
    )
    p.add_argument("--data-root", default=None, help="overrides data.root of the scenario")


def _load(args: argparse.Namespace):
    from fedunlearn.federated.scenario import load_scenario

    overrides = list(args.overrides)
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    return load_scenario(args.scenario, overrides)


def _cmd_validate(args: argparse.Namespace) -> int:
    scenario = _load(args)
    print(
        f"{args.scenario}: valid ({scenario.sites.count} sites, {scenario.training.rounds} rounds, "
        f"{len(scenario.effective_requests)} deletion request(s), method {scenario.deletion.method})"
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import time

    from fedunlearn.federated.simulation import run_scenario

    if args.resume:
        if args.scenario or args.overrides or args.out:
            raise FedunlearnError(
                "--resume RUN_DIR continues a run with the scenario saved in RUN_DIR/scenario.yaml; "
                "drop the scenario file, --set and --out"
            )
        run_dir = Path(args.resume)
        if not (run_dir / "scenario.yaml").is_file():
            raise FedunlearnError(
                f"{run_dir} is not a run directory (no scenario.yaml); pass the folder a "
                "`fedunlearn run` wrote"
            )
        args.scenario = str(run_dir / "scenario.yaml")
        run_dir = run_scenario(
            _load(args),
            run_dir,
            quiet=args.quiet,
            verbose=args.verbose,
            resume=True,
            until_round=args.until_round,
        )
        print(run_dir)
        return 0
    if not args.scenario:
        raise FedunlearnError(
            "give a scenario file (e.g. configs/quickstart.yaml), or --resume RUN_DIR"
        )
    scenario = _load(args)
    out = (
        Path(args.out)
        if args.out
        else Path("runs") / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    run_dir = run_scenario(
        scenario, out, quiet=args.quiet, verbose=args.verbose, until_round=args.until_round
    )
    print(run_dir)
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    import time

    from fedunlearn.deploy import DeployOptions, deploy
    from fedunlearn.progress import Progress

    if args.resume:
        if args.scenario or args.overrides or args.out:
            raise FedunlearnError(
                "--resume RUN_DIR continues a deployed run with the scenario saved in RUN_DIR; "
                "drop the scenario file, --set and --out"
            )
        run_dir = Path(args.resume)
        args.scenario = str(run_dir / "scenario.yaml")
    elif not args.scenario:
        raise FedunlearnError(
            "give a scenario file (e.g. configs/quickstart.yaml), or --resume RUN_DIR"
        )
    scenario = _load(args)
    if not args.resume:
        run_dir = Path(args.out or f"runs/{scenario.name}-deploy-{time.strftime('%Y%m%d-%H%M%S')}")
    opts = DeployOptions(args.sites, args.tls, args.auth, args.data_root, args.timeout or 0.0)
    work = Path(args.work) if args.work else None
    print(
        deploy(
            scenario,
            opts,
            run_dir,
            work=work,
            resume=bool(args.resume),
            progress=Progress(quiet=args.quiet),
        )
    )
    return 0


def _add_deploy(sub) -> None:  # type: ignore[no-untyped-def]
    dep = sub.add_parser(
        "deploy",
        help="run a scenario on Flower's Deployment Engine: a SuperLink and one SuperNode per site on this machine",
        description="Start a flower-superlink and N flower-supernodes on 127.0.0.1 (each site with its own "
        "state-dir under WORK/state/), submit the scenario with `flwr run`, follow it through the SuperLink's "
        "run status to the end, and stop every process started, by PID. Exit 0 only when the SuperLink says "
        "finished:completed and the run directory is complete.",
    )
    _scenario_args(dep, optional=True)
    dep.add_argument("--sites", type=int, required=True, help="SuperNodes to start (= sites.count)")
    dep.add_argument(
        "--tls", action="store_true", help="TLS with a CA and certificate made for this run"
    )
    dep.add_argument("--auth", action="store_true", help="SuperNode authentication (needs --tls)")
    dep.add_argument(
        "--out", default=None, help="run directory (default runs/NAME-deploy-TIMESTAMP)"
    )
    dep.add_argument(
        "--work",
        default=None,
        help="work folder: logs, certificates, keys, site state (default OUT.deploy)",
    )
    dep.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue an interrupted deployed run"
    )
    dep.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS", help="give up after this long"
    )
    dep.add_argument("--quiet", action="store_true", help="no progress lines")
    dep.set_defaults(func=_cmd_deploy)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from fedunlearn.progress import Progress
    from fedunlearn.sweeps import plan_sweep, run_sweep

    overrides = list(args.overrides) + ([f"data.root={args.data_root}"] if args.data_root else [])
    plan = plan_sweep(
        args.scenario, args.grid, args.out, overrides, control=args.control, retrain=args.retrain
    )
    try:
        outcome = run_sweep(
            plan,
            jobs=args.jobs,
            progress=Progress(quiet=args.quiet),
            timeout_s=args.run_timeout,
            share_prefix=args.share_prefix,
            engine=args.engine,
        )
    except KeyboardInterrupt:
        print(
            f"fedunlearn: interrupted; finished runs are kept in {plan.out / 'runs'}: "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    if outcome.summary is not None:
        print((plan.out / "summary.md").read_text())
    if outcome.failed:
        failed = "; ".join(f"{slug} ({why})" for slug, why in outcome.failed.items())
        raise FedunlearnError(
            f"{len(outcome.failed)} of {len(plan.points)} grid point(s) failed: {failed}; "
            f"logs in {plan.out / 'logs'}; rerun the same command to retry only those"
        )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from fedunlearn.reports import build_report

    print(build_report(args.dirs, args.out, args.format, allow_incomplete=args.allow_incomplete))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from fedunlearn.bench import BenchSettings, run_bench
    from fedunlearn.progress import Progress

    out = Path(args.out) if args.out else Path("runs") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = BenchSettings.smoke() if args.quick else BenchSettings.full()
    settings = dataclasses.replace(settings, sweep=args.sweep)
    root = Path(args.data_root) if args.data_root else None
    table = run_bench(settings, out, root, Progress(quiet=args.quiet))
    print(table.render())
    print(f"\n{out / 'bench.csv'}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (``--help`` still shows the usage); subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"fedunlearn: error: {self.prog}: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    from fedunlearn.cli_study import add_study_commands
    from fedunlearn.data import DATASET_NAMES, SIZES

    parser = _Parser(prog="fedunlearn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="manage MedMNIST files").add_subparsers(
        dest="data_command", required=True
    )
    fetch = data.add_parser("fetch", help="download an official .npz and check its MD5")
    fetch.add_argument(
        "--dataset", required=True, choices=[d for d in DATASET_NAMES if d != "synthetic"]
    )
    fetch.add_argument("--size", type=int, default=28, choices=SIZES)
    fetch.add_argument(
        "--if-present-ok",
        action="store_true",
        help="do nothing when a file is already there (its MD5 is still reported)",
    )
    _add_data_root(fetch)
    fetch.set_defaults(func=_cmd_fetch)
    add_study_commands(sub)

    run = sub.add_parser("run", help="run a federated scenario on Flower's simulation engine (Ray)")
    _scenario_args(run, optional=True)
    run.add_argument(
        "--out",
        default=None,
        help="run directory (default runs/NAME-TIMESTAMP); must be new or empty",
    )
    run.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue an interrupted run from its newest checkpoint (with the scenario saved in "
        "RUN_DIR; --data-root may point to the data's new place)",
    )
    run.add_argument(
        "--until-round",
        type=int,
        default=None,
        metavar="N",
        help="pause after round N: the run stays incomplete and --resume continues it (a sweep runs its "
        "shared prefixes so)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines (for scripts)")
    run.add_argument("--verbose", action="store_true", help="show Flower's and Ray's own logs")
    run.set_defaults(func=_cmd_run)
    _add_deploy(sub)

    sw = sub.add_parser(
        "sweep",
        help="run a grid of scenarios (resumable) and summarise each method against control and Retrain",
        description="Run the Cartesian product of the --grid values of a scenario, each point in DIR/runs/<slug>/, "
        "then write DIR/summary.csv and DIR/summary.md (per method, metric and moment: mean ± std over seeds and "
        "the paired difference to the control arm and to Federated Retrain with its 95 % bootstrap interval and a "
        "verdict). The control arm (deletion.method=none) and Retrain are added to the deletion.method axis "
        "unless --no-control / --no-retrain. Points that differ only in deletion handling run the rounds before "
        "their first deletion request once (DIR/prefixes/) and branch from its checkpoint (--no-share-prefix: "
        "not); Retrain arms never share. Rerunning the same command resumes: finished runs are kept, "
        "unfinished ones continue from their newest checkpoint (or are redone when they have none).",
    )
    _scenario_args(sw)
    sw.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a scenario key path and its values, parsed as YAML scalars (repeatable; the points are the "
        "product), e.g. --grid deletion.method=salun-cra,rl,retrain --grid seed=0,1",
    )
    sw.add_argument("--out", required=True, help="sweep directory (created; reused to resume)")
    sw.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="engines (or, with --engine per-point, grid points) run at once, each a subprocess with its own "
        "local Ray (default 1). Each local Ray sees every CPU of this machine, so N jobs share them; with "
        "ray.address set, every run joins that Ray cluster and uses the cluster's resources instead",
    )
    sw.add_argument(
        "--engine",
        choices=("shared", "per-point"),
        default="shared",
        help="shared (default): each of the --jobs slots runs its batch of points one after another in ONE "
        "subprocess and one Flower simulation engine (Ray and its actors started once, kept warm); "
        "per-point: each point is its own `python -m fedunlearn run` subprocess with its own Ray",
    )
    sw.add_argument(
        "--run-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a run still going after this long; it counts as failed and is resumed next time "
        "(with --engine shared a batch of n runs gets n times this; default: no limit)",
    )
    sw.add_argument(
        "--no-control",
        dest="control",
        action="store_false",
        help="do not add the control arm (deletion.method=none: requests recorded, nothing erased)",
    )
    sw.add_argument(
        "--no-retrain",
        dest="retrain",
        action="store_false",
        help="do not add the Federated Retrain arm",
    )
    sw.add_argument(
        "--no-share-prefix",
        dest="share_prefix",
        action="store_false",
        help="run every point from round 1, instead of running once the rounds before the first deletion "
        "request that points differing only in deletion.method/policy/integration/batch_every/unlearn share "
        "and branching them from its checkpoint",
    )
    sw.add_argument(
        "--quiet", action="store_true", help="no progress lines (each run's output is in DIR/logs/)"
    )
    sw.set_defaults(func=_cmd_sweep)

    rep = sub.add_parser(
        "report",
        help="one HTML (or Markdown) report on runs and sweeps",
        description="Compare finished runs: risk over rounds, final metrics, per-site risk, "
        "cost vs risk vs forgetting, provenance. Everything is computed from the runs' files.",
    )
    rep.add_argument(
        "dirs",
        nargs="+",
        metavar="DIR",
        help="run directories and/or sweep directories (their runs/*)",
    )
    rep.add_argument("--out", default="report.html", help="report file (default report.html)")
    rep.add_argument(
        "--format",
        choices=("html", "md"),
        default=None,
        help="html: one self-contained file; md: Markdown with PNGs beside it (default: from --out)",
    )
    rep.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="leave unfinished runs out with a warning instead of refusing",
    )
    rep.set_defaults(func=_cmd_report)

    val = sub.add_parser("validate", help="check a scenario file without running it")
    _scenario_args(val)
    val.set_defaults(func=_cmd_validate)

    ben = sub.add_parser(
        "bench",
        help="performance benchmark: throughput, round overhead, erasure cost, memory",
        description="Measure local training throughput (engine vs a bare PyTorch loop vs the usual "
        "MedMNIST pipeline), the federation's per-round overhead at 2, 8 and 32 sites, the cost of a "
        "salun-cra erasure vs Federated Retrain, and peak memory of the server and a client actor. "
        "Prints one table and writes OUT/bench.csv (benchmark, variant, metric, value, unit).",
    )
    ben.add_argument(
        "--data-root",
        default=None,
        help="folder with dermamnist.npz (and pathmnist.npz) at 28 px; synthetic data of the same "
        "size stand in for what is absent",
    )
    ben.add_argument("--out", default=None, help="output directory (default runs/bench-TIMESTAMP)")
    ben.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes: a smoke test of every benchmark (figures not meaningful)",
    )
    ben.add_argument(
        "--sweep",
        choices=("off", "small", "full"),
        default="off",
        help="also time a quickstart sweep with and without shared prefixes (sweep_wall_ratio): "
        "small = 2 methods x 2 seeds, 6 rounds (minutes); full = none,salun-cra,rl x seeds 0,1,2 "
        "plus Retrain (about an hour on 2 cores); default off",
    )
    ben.add_argument("--quiet", action="store_true", help="no progress lines")
    ben.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FedunlearnError, ValueError) as exc:
        if os.environ.get("FEDUNLEARN_DEBUG"):
            raise
        print(f"fedunlearn: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output or data path that cannot be created, read or written
        if os.environ.get("FEDUNLEARN_DEBUG"):
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"fedunlearn: error: cannot use{where}: {exc.strerror or exc}; pass a path you can write to "
            "(--out) or read (--data-root, the scenario file)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
