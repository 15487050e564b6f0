"""Stand-in step: records its parameters and input digests, labelled contract-test; as a runner and a scorer, writes
the files evaluate reads, with no figure from any model."""

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
elif params["stage"] == "evaluate":  # as a runner: no model, no keypoints, the files evaluate reads
    (out / params["output"]).mkdir(exist_ok=True)
    (out / params["output"] / "predictions.json").write_text(json.dumps({"standin": "contract-test", "image_ids": [1], "results": []}))
    (out / params["output"] / "timing.json").write_text(json.dumps({"inputs": 1, "images": 1, "seconds": 0.0, "seconds_per_input": 0.0}))
elif params["stage"] == "score":
    (out / "score.json").write_text(json.dumps({"metrics": [{"type": "contract-test"}], "dataset": None, "images": 1,
                                                "instances": 1, "figures": {"AP": 0.0}}))
else:
    (out / params["output"]).mkdir()
    (out / params["output"] / "standin.json").write_text(record)
print("stand-in", params["stage"], "done")
