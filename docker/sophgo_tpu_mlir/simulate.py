"""Run one bmodel in TPU-MLIR's cmodel simulator on many inputs, in one process.

model_runner takes one npz per run and pays its start-up every time (Python imports, `model_tool`
queries, loading the simulator), which is most of its run time on small inputs; TPU-MLIR's own
inference function, called in a loop, pays it once. The tool writes a folder beside the bmodel it
runs, so this is given a copy in the work folder, never the artifact's bmodel.

Usage: /opt/venv/bin/python simulate.py MODEL.bmodel IN.npz:OUT.npz [IN.npz:OUT.npz ...]
"""

from __future__ import annotations

import os
import sys

import numpy as np
import tpu_mlir  # noqa: F401  (sets PATH, LD_LIBRARY_PATH and sys.path for the tools in os.environ)

READY = "POSEPIPE_TPU_MLIR_ENV"


def main(bmodel: str, pairs: list[str]) -> None:
    from tpu_mlir.python.tools.model_runner import model_inference

    for pair in pairs:
        source, dest = pair.split(":")
        with np.load(source) as inputs:
            outputs = model_inference(dict(inputs), bmodel)
        np.savez(dest, **outputs)
        print(f"simulated {source} -> {dest}", flush=True)


if __name__ == "__main__":
    if os.environ.get(READY) != "1":  # the loader reads LD_LIBRARY_PATH at start: run again, as its console scripts do
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, READY: "1"})
    main(sys.argv[1], sys.argv[2:])
