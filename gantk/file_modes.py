"""Modes for files and folders written through ``tempfile`` (which makes them owner-only)."""

from __future__ import annotations

import os
from pathlib import Path


def give_default_mode(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``open()`` or ``mkdir()`` would have: 0666 or 0777 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~mask)
