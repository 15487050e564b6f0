"""Which MMPose 1.x config a recipe's ``model.mmpose.config`` means, from data only.

A recipe names either an MMPose 0.x config, as the seeds do (mapped by
``pipelines/core/schemas/mmpose-0x-configs.yaml``), or any MMPose 1.x config path as it is in the
mmpose package (listed in ``docker/mmpose/configs.txt``, made from the locked wheel). Anything
else is a recipe error naming the field, found by `invoke validate` before any download.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

import yaml

from pipelines.core.errors import UsageError
from pipelines.core.layout import SCHEMAS, layout

TABLE_0X = SCHEMAS / "mmpose-0x-configs.yaml"


def configs_1x_path() -> Path:
    """docker/mmpose/configs.txt: a fact of the export image, so it lives in the checkout beside it."""
    return layout().docker / "mmpose" / "configs.txt"


@functools.cache
def table_0x() -> dict[str, str]:
    return yaml.safe_load(TABLE_0X.read_text())


@functools.cache
def configs_1x() -> frozenset[str]:
    return frozenset(line for line in configs_1x_path().read_text().splitlines() if line and not line.startswith("#"))


def problem(config: str) -> str | None:
    """Why ``config`` cannot be built (with the nearest known names), or None."""
    if config in table_0x() or config in configs_1x():
        return None
    near = difflib.get_close_matches(config, [*configs_1x(), *table_0x()], n=2, cutoff=0.6)
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    return (f"is neither an MMPose 1.x config of the export image (docker/mmpose/configs.txt) nor a mapped "
            f"0.x config (pipelines/core/schemas/mmpose-0x-configs.yaml){hint}")


def config_1x(config: str) -> str:
    """The 1.x config to build for ``config``."""
    if (why := problem(config)) is not None:
        raise UsageError(f"model.mmpose.config {config} {why}")
    return table_0x().get(config, config)
