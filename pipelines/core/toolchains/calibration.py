"""Calibration sets picked out of fetched archives, once per recipe (docker/calibration/)."""

from pipelines.core.toolchain import Toolchain

TOOLCHAIN = Toolchain(
    name="calibration",
    kind="open",
    vendor="posepipe",
    summary="Calibration image sets picked from fetched archives",
    runner_label="ubuntu-latest",
)
