"""The posepipe checkout's own commit, for manifests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def posepipe_commit(root: Path) -> str:
    """HEAD, with "-dirty" when the code or recipes that shape artifacts have local changes."""
    res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if res.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "pipelines", "docker", "recipes", "tasks.py"],
                           capture_output=True, text=True).stdout.strip()
    return res.stdout.strip() + ("-dirty" if dirty else "")
