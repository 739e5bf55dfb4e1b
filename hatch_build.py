"""Hatchling build hook: builds the dashboard (`ui/`) into `src/globeguard/web/dist` so that
wheels, sdists and editable installs carry it, and a `pip install` user needs no Node.

- `ui/` missing (a wheel built from an sdist, which already holds `dist/`): nothing to build;
  the built files must be there.
- Skipped when `dist/` is newer than every source file and the lockfile (re-installs do not
  re-run npm), or when GLOBEGUARD_SKIP_UI=1 (then the server answers /dashboard with 503).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).parent
UI = ROOT / "ui"
DIST = ROOT / "src" / "globeguard" / "web" / "dist"
INDEX = DIST / "index.html"


def _newest(paths: list[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def _sources() -> list[Path]:
    files = [UI / "package.json", UI / "package-lock.json", UI / "index.html"]
    files += [UI / name for name in ("vite.config.ts", "tsconfig.json")]
    return files + [p for p in (UI / "src").rglob("*") if p.is_file()]


def up_to_date() -> bool:
    return INDEX.is_file() and INDEX.stat().st_mtime >= _newest(_sources())


class DashboardBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("GLOBEGUARD_SKIP_UI") == "1":
            self.app.display_warning("GLOBEGUARD_SKIP_UI=1: the dashboard is not built")
            return
        if not (UI / "package.json").is_file():
            if not INDEX.is_file():
                raise RuntimeError(
                    "no ui/ sources and no built dashboard in src/globeguard/web/dist"
                )
            return
        if up_to_date():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "building the dashboard needs Node 20.19+ and npm 11 (or set GLOBEGUARD_SKIP_UI=1)"
            )
        self.app.display_info("building the dashboard: npm ci && npm run build")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=UI, check=True)  # noqa: S603
        subprocess.run([npm, "run", "build"], cwd=UI, check=True)  # noqa: S603
        if not INDEX.is_file():
            raise RuntimeError(f"the dashboard build did not produce {INDEX}")
