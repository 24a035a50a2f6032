"""Download an official MedMNIST+ archive, checked against its MD5 (standard library only).

The download goes to a temporary file in the data root and is moved into
place only once its MD5 matches, so the final path never holds a partial file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .loading import file_md5, resolve_root
from .specs import DataError, get_dataset_spec

__all__ = ["fetch"]

_CHUNK = 1 << 20


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def fetch(
    name: str,
    size: int,
    root: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Make sure the official archive of ``name`` at ``size`` px is in the data root.

    Parameters
    ----------
    name : str
        ``"dermamnist"`` or ``"pathmnist"``.
    size : int
        28, 64, 128 or 224.
    root : path, optional
        Data root (see :func:`fedunlearn.data.resolve_root`); created if absent.
    url : str, optional
        Download from here instead of the official URL (a mirror, or ``file://``).
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        The archive, whose MD5 is the official one. Nothing is downloaded when
        it is already there.

    Raises
    ------
    DataError
        Network failure (offline) or an MD5 mismatch; no partial file is left.
    """
    spec = get_dataset_spec(name)
    filename = spec.filename(size)
    expected = spec.md5(size)
    root_path = resolve_root(root)
    final = root_path / filename
    if final.is_file() and file_md5(final) == expected:
        return final
    source = url or spec.url(size)
    try:
        root_path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root_path, prefix=f".{filename}.", suffix=".part")
    except OSError as exc:
        raise DataError(
            f"cannot write to the data root {root_path} ({exc.strerror or exc}); "
            "choose a writable --data-root"
        ) from exc
    try:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            # the URL comes from medmnist.INFO or from the user
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(source, timeout=timeout) as response,
            ):
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            raise DataError(
                f"could not download {source} ({_reason(exc)}); "
                f"offline? download it elsewhere and save it as {final}"
            ) from exc
        got = digest.hexdigest()
        if got != expected:
            raise DataError(
                f"download from {source} has md5 {got}, expected the official {expected}; "
                f"nothing saved at {final} - retry, or check the URL"
            )
        try:
            os.replace(tmp, final)
        except OSError as exc:
            raise DataError(
                f"could not move the download to {final} ({exc.strerror or exc}); "
                "remove what is there and retry"
            ) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final
