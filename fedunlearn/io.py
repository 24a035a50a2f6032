"""Writing results: atomic files and the run manifest.

Every result file is written to a temporary sibling and renamed into place,
so a reader never sees a half-written file, and a run directory only gets its
``manifest.json`` (with ``complete: true``) once everything else is there.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a site's process writes no tables: it need not load pandas
    import pandas as pd

_PACKAGES = ("fedunlearn", "torch", "flwr", "ray", "numpy", "pandas", "medmnist", "scikit-learn")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide a result."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def git_commit() -> str | None:
    """The fedunlearn checkout's commit, when it runs from one."""
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def build_manifest(**fields: Any) -> dict[str, Any]:
    """A manifest: the caller's fields plus versions, platform and commit."""
    base: dict[str, Any] = {
        "fedunlearn_commit": git_commit(),
        "versions": versions(),
        "platform": platform.platform(),
    }
    base.update(fields)
    return base


def write_manifest(run_dir: Path, manifest: Mapping[str, Any]) -> None:
    atomic_write_json(Path(run_dir) / "manifest.json", dict(manifest))


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """A run directory's ``manifest.json``; None when there is none.

    Raises
    ------
    ValueError
        If the file exists but cannot be read as a JSON object.
    """
    path = Path(run_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} is not a JSON object")
    return manifest


def is_complete(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run: its manifest says ``complete: true``."""
    try:
        manifest = read_manifest(run_dir)
    except ValueError:
        return False
    return manifest is not None and manifest.get("complete") is True
