import json, os, sys

def record(call, **fields):
    with open("/out/contract-calls.jsonl", "a") as f:
        f.write(json.dumps({"call": call, "argv": sys.argv[1:], "cwd": os.getcwd(), **fields}) + "\n")

def option(name):
    for a in sys.argv[1:]:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    args = sys.argv[1:]
    return args[args.index(f"--{name}") + 1] if f"--{name}" in args else None
