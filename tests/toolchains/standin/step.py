"""Stand-in step: records its parameters and input digests, labelled contract-test."""

import hashlib
import json
from pathlib import Path

params = json.loads(Path("/in/params.json").read_text())
inputs = {
    str(p.relative_to("/in")): hashlib.sha256(p.read_bytes()).hexdigest()
    for p in sorted(Path("/in").rglob("*"))
    if p.is_file() and p.name != "params.json"
}
record = json.dumps({"standin": "contract-test", "params": params, "inputs": inputs}, sort_keys=True, indent=1)
out = Path("/out")
if params["stage"] == "export":
    for fmt in params["formats"]:
        (out / ("model.pt" if fmt == "torchscript" else "model.onnx")).write_text(record)
else:
    (out / params["output"]).mkdir()
    (out / params["output"] / "standin.json").write_text(record)
print("stand-in", params["stage"], "done")
