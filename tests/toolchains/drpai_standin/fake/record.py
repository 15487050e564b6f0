"""Appends one JSON line per vendor call to /out/contract-calls.jsonl."""
import json, os

def record(call, **fields):
    env = {k: os.environ.get(k) for k in ("PRODUCT", "TRANSLATOR", "SDK", "TVM_ROOT")}
    with open("/out/contract-calls.jsonl", "a") as f:
        f.write(json.dumps({"call": call, "cwd": os.getcwd(), "env": env, **fields}, default=repr) + "\n")
