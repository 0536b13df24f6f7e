"""Which code a run used: the git commit of the DAG bundle, for lineage and the model card.

A versioned bundle (Airflow's ``GitDagBundle``) reports its commit as the DAG run's
``bundle_version``; a local bundle does not, so the commit of the checkout holding this package is
read with ``git`` itself. Anything else (not a git checkout, no git, a slow file system) is
``unknown`` rather than a failed run: lineage is recorded, never a reason to stop training.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UNKNOWN = "unknown"
#: Seconds one ``git`` call may take before the commit is reported unknown.
GIT_TIMEOUT_S = 5.0


def _git(folder: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell, our own folder
            [git, "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit(folder: Path | None = None, bundle_version: str | None = None) -> str:
    """``bundle_version`` when Airflow knows it; else the commit of the checkout holding ``folder``
    (default: this package), ``+dirty`` when tracked files differ from it; else ``unknown``."""
    if bundle_version:
        return bundle_version
    where = folder or Path(__file__).resolve().parent
    head = _git(where, "rev-parse", "--verify", "HEAD")
    if not head or len(head) != 40:
        return UNKNOWN
    changes = _git(where, "status", "--porcelain", "--untracked-files=no")
    return f"{head}+dirty" if changes else head
