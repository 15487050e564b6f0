"""Runs an engine in its own process, for kill -9 and concurrency tests.

usage: python -m tests.engine_child STORE STEPS_JSON
Prints each container log line as "line: ..." and finally "stats: {...}".
"""

import json
import logging
import signal
import sys
from pathlib import Path

from pipelines.core.steps import Step

from .conftest import make_engine

# Ctrl-C as in a terminal, however the tests were started: a run started in the background by a script
# (`cmd &`) ignores SIGINT, every process under it inherits that, and Python then raises no KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="log: %(message)s", force=True)

store = Path(sys.argv[1])
steps = [Step(**{**s, "deps": tuple(map(tuple, s.get("deps", ())))}) for s in json.loads(sys.argv[2])]
engine = make_engine(store, on_line=lambda step, line: print(f"line: {line}", flush=True))
sys.stdout.reconfigure(line_buffering=True)
engine.run(steps)
print("stats: " + json.dumps({"ran": engine.stats.ran, "cached": engine.stats.cached}), flush=True)
