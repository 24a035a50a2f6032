"""A leak scan of a run directory: forget ids or forgotten images anywhere outside the sites' own folders.

The forget ids come from the sites' ledgers (``sites/<site>/ledger.sqlite``),
the only place they may live. Every other file is read as text (SQLite
databases through a full SQL dump), its integer tokens are taken in order, and
it leaks a request's ids when

- three consecutive tokens are distinct forget ids of the request (a list, a
  column, a joined string), or
- it holds half or more of the request's ids anywhere (scattered).

Only ids >= 10 count, so that rounds, site indices and small counts cannot
match by chance. Forgotten images are searched as raw bytes in every file.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from fedunlearn.federated.ledger import SiteLedger
from fedunlearn.federated.scenario import Scenario
from fedunlearn.federated.site import scenario_dataset

_TOKEN = re.compile(rb"(?<![\w.\-])(\d+)(?:\.0+)?(?![\w.])")
_MIN_ID = 10
_WINDOW = 3
_IMAGE_PROBE = 64  # bytes from the middle of each forgotten image


def forget_sets(run_dir: Path, ledgers: list[Path] | None = None) -> dict[str, set[int]]:
    """``site/rN`` -> the rows request N withdrew, from every site ledger of the run (``ledgers``: the sites'
    ledgers where they live outside the run directory, in a deployment's state-dirs)."""
    out = {}
    paths = ledgers if ledgers is not None else (run_dir / "sites").glob("*/ledger.sqlite")
    for path in sorted(paths):
        for rid, rows in SiteLedger(path).withdrawn().items():
            out[f"{path.parent.name}/r{rid}"] = {int(r) for r in rows.tolist()}
    return out


def _readable(path: Path) -> bytes:
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\x00"):
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "\n".join(con.iterdump()).encode()
        finally:
            con.close()
    return data


def _id_leak(tokens: list[int], ids: set[int]) -> str | None:
    big = {i for i in ids if i >= _MIN_ID}
    if len(big) < _WINDOW:
        return None
    for i in range(len(tokens) - _WINDOW + 1):
        window = tokens[i : i + _WINDOW]
        if len(set(window)) == _WINDOW and all(t in big for t in window):
            return f"{_WINDOW} forget ids in a row ({window})"
    present = big & set(tokens)
    if len(present) * 2 >= len(big):
        return f"{len(present)} of its {len(big)} forget ids"
    return None


def scan_run_dir(run_dir: Path, scenario: Scenario, ledgers: list[Path] | None = None) -> list[str]:
    """Every leak found, as ``path: what``; ``[]`` when the run directory is clean."""
    run_dir = Path(run_dir)
    sets = forget_sets(run_dir, ledgers)
    if not sets:
        raise AssertionError(f"{run_dir} has no site ledger with forget ids: nothing to scan for")
    images = scenario_dataset(scenario).train.images
    probes = {}
    for name, rows in sets.items():
        for r in rows:
            flat = images[r].numpy().tobytes()
            mid = max(0, len(flat) // 2 - _IMAGE_PROBE // 2)
            probe = flat[mid : mid + _IMAGE_PROBE]
            if len(set(probe)) >= 16:  # a flat patch would match any file by chance
                probes[probe] = f"{name} row image"
    leaks = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(run_dir)
        if rel.parts[0] == "sites":
            continue
        raw = path.read_bytes()
        leaks += [
            f"{path}: image of a forgotten sample ({what})"
            for probe, what in probes.items()
            if probe in raw
        ]
        tokens = [int(m.group(1)) for m in _TOKEN.finditer(_readable(path))]
        for name, ids in sets.items():
            if why := _id_leak(tokens, ids):
                leaks.append(f"{path}: request {name}: {why}")
    return leaks
