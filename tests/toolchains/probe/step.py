"""Probe step: does what /in/params.json says, so tests can drive the engine."""

import errno
import hashlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import six  # installed from the hashed wheelhouse: proves --no-index installs work

params = json.loads(Path("/in/params.json").read_text())
action = params["action"]
out = Path("/out")
print(f"probe: {action} (six {six.__version__})", flush=True)


def inputs():
    found = {}
    for p in sorted(Path("/in").rglob("*")):
        if p.is_file() and p.name != "params.json":
            found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


if action == "write":
    (out / "result.txt").write_text(params.get("text", "") + "\n")
    (out / "inputs.json").write_text(json.dumps(inputs(), sort_keys=True))
    (out / "env.json").write_text(json.dumps({"uid": os.getuid(), "epoch": os.environ.get("SOURCE_DATE_EPOCH")}))
    tried = {}
    for dep in sorted(p for p in Path("/in").iterdir() if p.is_dir()):
        try:
            (dep / "result.txt").write_text("overwritten")
            tried[dep.name] = "written"
        except OSError as e:
            tried[dep.name] = errno.errorcode.get(e.errno, str(e.errno))
    (out / "dep_writes.json").write_text(json.dumps(tried, sort_keys=True))
elif action == "fail":
    for i in range(40):
        print(f"log line {i}")
    print("probe: failing on purpose", file=sys.stderr)
    sys.exit(3)
elif action == "hang":
    print("probe: hanging", flush=True)
    time.sleep(3600)
elif action == "escape":
    attempts = {}
    for target in ("/in/params.json", "/in/new.txt", "/etc/escape.txt", "/opt/escape.txt", "/escape.txt"):
        try:
            with open(target, "a") as f:
                f.write("escaped")
            attempts[target] = "written"
        except OSError as e:
            attempts[target] = type(e).__name__
    (out / "escape.json").write_text(json.dumps(attempts, sort_keys=True))
elif action == "network":
    interfaces = [line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]]
    try:
        socket.getaddrinfo("pypi.org", 443)
        dns = "resolved"
    except OSError as e:
        dns = type(e).__name__
    (out / "network.json").write_text(json.dumps({"interfaces": interfaces, "dns": dns}))
elif action == "slow_write":
    (out / "part.txt").write_text("first half\n")
    print("probe: half", flush=True)
    time.sleep(params["seconds"])
    (out / "result.txt").write_text(params.get("text", "") + "\n")
elif action == "special":  # something that is not a plain file: a link to a file or folder, or a FIFO
    (out / "real.txt").write_text("real\n")
    kind = params["kind"]
    if kind == "fifo":
        os.mkfifo(out / "pipe")
    else:
        os.symlink("/etc" if kind == "dirlink" else "real.txt", out / "link")
elif action == "await_signal":  # a test releases it with SIGUSR1 once it has seen what it waits for
    (out / "part.txt").write_text("first half\n")
    released = []
    signal.signal(signal.SIGUSR1, lambda *_: released.append(True))
    print("probe: waiting for SIGUSR1", flush=True)
    while not released:
        signal.pause()
    (out / "result.txt").write_text(params.get("text", "") + "\n")
elif action == "random":
    (out / "same.txt").write_text("stable\n")
    (out / "random.bin").write_bytes(os.urandom(16))  # a toolchain that is not deterministic
elif action == "burn":
    h = hashlib.sha256()
    for i in range(params["rounds"]):
        h.update(str(i).encode())
    (out / "burn.txt").write_text(h.hexdigest())
else:
    sys.exit(f"unknown action {action}")
print("probe: done", flush=True)
