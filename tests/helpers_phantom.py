"""Shared helpers for the phantom tests: tiny configurations and file hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypomimia.config.phantom import PhantomConfig


def tiny(**overrides) -> PhantomConfig:
    """The smallest valid phantom: seconds to generate."""
    base = {"subjects": 4, "videos_per_subject": 1, "duration_s": 3.0, "size": 256, "workers": 1,
            "tasks": ["smile"]}  # fmt: skip
    return PhantomConfig(**(base | overrides))


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
