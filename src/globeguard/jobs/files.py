"""Where job files live: uploads waiting to be imported, exports waiting to be downloaded,
Auth0 export files being imported. One directory per kind under `jobs.dir`; several
processes need it shared (one host, or a shared volume)."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


class JobFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, kind: str, name: str) -> Path:
        folder = self.root / kind
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder / name

    def upload(self, job_id: uuid.UUID) -> Path:
        return self._path("uploads", f"{job_id}.upload")

    def export(self, job_id: uuid.UUID, extension: str) -> Path:
        return self._path("exports", f"{job_id}.{extension}.gz")

    def staging(self, job_id: uuid.UUID, name: str) -> Path:
        return self._path("staging", f"{job_id}.{name}")

    def remove_all(self, job_id: uuid.UUID) -> None:
        """Every file of a job, wherever it is (retention)."""
        for folder in ("uploads", "exports", "staging"):
            directory = self.root / folder
            if not directory.is_dir():
                continue
            for path in directory.glob(f"{job_id}.*"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
