"""Downloading archives: MD5 check, atomic placement, offline errors (no network used)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fedunlearn.data import DataError, DatasetSpec, fetch

PAYLOAD = b"PK-not-really-an-archive-" * 4000  # ~100 kB, several read chunks


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "mirror" / "dermamnist.npz"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


@pytest.fixture
def official_md5(monkeypatch: pytest.MonkeyPatch) -> str:
    """Pretend the payload is the official file."""
    digest = hashlib.md5(PAYLOAD).hexdigest()
    monkeypatch.setattr(DatasetSpec, "md5", lambda self, size: digest)
    return digest


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".part"))


def test_fetch_from_file_url_places_the_checked_file(
    tmp_path: Path, source: Path, official_md5: str
) -> None:
    root = tmp_path / "root"  # created by fetch
    path = fetch("dermamnist", 28, root, url=source.as_uri())
    assert path == root / "dermamnist.npz"
    assert path.read_bytes() == PAYLOAD
    assert _leftovers(root) == []


def test_present_file_with_official_md5_is_not_downloaded_again(
    tmp_path: Path, official_md5: str
) -> None:
    (tmp_path / "dermamnist.npz").write_bytes(PAYLOAD)
    missing = (tmp_path / "nowhere.npz").as_uri()
    assert fetch("dermamnist", 28, tmp_path, url=missing) == tmp_path / "dermamnist.npz"


def test_md5_mismatch_leaves_no_file(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DatasetSpec, "md5", lambda self, size: "0" * 32)
    root = tmp_path / "root"
    with pytest.raises(DataError, match="md5") as err:
        fetch("dermamnist", 64, root, url=source.as_uri())
    assert hashlib.md5(PAYLOAD).hexdigest() in str(err.value)
    assert not (root / "dermamnist_64.npz").exists()
    assert _leftovers(root) == []


def test_unreachable_url_names_the_path_and_keeps_the_old_file(tmp_path: Path) -> None:
    final = tmp_path / "pathmnist.npz"
    final.write_bytes(b"an older, unofficial copy")
    with pytest.raises(DataError) as err:
        fetch("pathmnist", 28, tmp_path, url="http://127.0.0.1:9/x.npz", timeout=5)
    message = str(err.value)
    assert "could not download http://127.0.0.1:9/x.npz" in message
    assert f"save it as {final}" in message and "offline?" in message
    assert (
        final.read_bytes() == b"an older, unofficial copy"
    )  # never replaced by a partial download
    assert _leftovers(tmp_path) == []


def test_fetch_rejects_synthetic_and_bad_size(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="generated"):
        fetch("synthetic", 28, tmp_path)
    with pytest.raises(DataError, match="choose one of"):
        fetch("dermamnist", 100, tmp_path)
