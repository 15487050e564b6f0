#!/usr/bin/env python3
"""Stand-in TPU-MLIR tools: record argv and working folder, write the files the real ones would."""
import json, os, sys
from pathlib import Path

tool = Path(sys.argv[0]).name
args = sys.argv[1:]
dataset = args[args.index("--dataset") + 1] if "--dataset" in args else None
with open("/out/contract-calls.jsonl", "a") as f:
    f.write(json.dumps({"call": tool, "argv": args, "cwd": os.getcwd(),
                        "dataset_files": sorted(os.listdir(dataset)) if dataset else None}) + "\n")
value = lambda flag: args[args.index(flag) + 1]  # noqa: E731
if tool == "model_transform.py":
    Path(value("--mlir")).write_text("stand-in mlir\n")
    Path(f"{value('--model_name')}_in_f32.npz").write_text("stand-in\n")
    if "--test_result" in args:
        Path(value("--test_result")).write_text("stand-in\n")
elif tool == "run_calibration.py":
    Path(value("-o")).write_text("stand-in table\n")
else:
    Path(value("--model")).write_text(f"stand-in {value('--quantize')} bmodel for {value('--chip')}\n")
