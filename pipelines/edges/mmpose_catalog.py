"""The MMPose configs the export image can build, listed from the locked mmpose wheel itself.

``docker/mmpose/configs.txt`` is what `invoke validate` checks a recipe's config against, before
anything is downloaded; it is made from the wheel that `docker/mmpose/requirements.lock` pins, so
it changes exactly when that lock does. Run ``python -m pipelines.edges.mmpose_catalog`` after
`invoke lock --toolchain mmpose`; a test says when the two disagree.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from pipelines.core.layout import REPO_ROOT
from pipelines.core.mmpose_configs import configs_1x_path
from pipelines.edges.store import Store
from pipelines.edges.containers.wheelhouse import fill_wheelhouse

LOCK = REPO_ROOT / "docker" / "mmpose" / "requirements.lock"
IN_WHEEL = "mmpose/.mim/"


def listed(wheel: Path) -> list[str]:
    """Every model config in the wheel (not the shared ``_base_`` fragments), as recipes name them."""
    with zipfile.ZipFile(wheel) as z:
        return sorted(n.removeprefix(IN_WHEEL) for n in z.namelist()
                      if n.startswith(IN_WHEEL + "configs/") and n.endswith(".py") and "/_base_/" not in n)


def render(wheel: Path) -> str:
    head = f"# MMPose model configs in {wheel.name} (pinned by docker/mmpose/requirements.lock); made by pipelines/edges/mmpose_catalog.py\n"
    return head + "".join(f"{c}\n" for c in listed(wheel))


def locked_wheel(wheelhouse: Path) -> Path:
    return next(w for w in fill_wheelhouse(LOCK, wheelhouse) if w.name.startswith("mmpose-"))


if __name__ == "__main__":
    from pipelines.core.layout import layout

    configs_1x_path().write_text(render(locked_wheel(Store(layout().store).wheels)))
    print(f"wrote {configs_1x_path()}", file=sys.stderr)
