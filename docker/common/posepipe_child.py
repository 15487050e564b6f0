"""A converter that can take its process down (a segfault, an abort), run in a child of the step script.

The child reports an error it survives as its root cause on one line marked CANNOT and exits 3 (``refuse``);
the parent (``run``) turns that line, or the signal or exit code, into one failure a person can act on.
Copied into the images whose toolchain.yaml lists it under ``shared:``.
"""

import sys

from posepipe_step import fail, run_capture

CANNOT = "posepipe: cannot convert: "  # the child's last word on why the converter failed


def run(argv, failure, cwd=None):
    """Run the child (its output echoed into the step's log) and return that output; if it failed, fail the
    step with ``failure`` and why: the child's own CANNOT line, else how it ended."""
    code, output = run_capture(argv, cwd)
    if code != 0:
        said = [line.removeprefix(CANNOT) for line in output.splitlines() if line.startswith(CANNOT)]
        why = said[-1] if said else ("it crashed with signal {}".format(-code) if code < 0 else "it exited with {}".format(code))
        fail("{}: {}".format(failure, why))
    return output


def refuse(error):
    """In the child: ``error``'s root cause on one CANNOT line, then exit 3."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    print("{}{}: {}".format(CANNOT, type(root).__name__, str(root).replace("\n", " ")[:400]), flush=True)
    sys.exit(3)
