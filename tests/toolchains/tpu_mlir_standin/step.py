"""Stand-in TPU-MLIR step: a placeholder bmodel and a report with the real step's keys, labelled contract-test."""

import json
from pathlib import Path

params = json.loads(Path("/in/params.json").read_text())
out = Path("/out") / params["output"]
out.mkdir()
bmodel = b"stand-in bmodel, not a compile\n"
(out / f"{params['output']}.bmodel").write_bytes(bmodel)
report = {
    "standin": "contract-test", "bmodel_bytes": len(bmodel),
    "model_deploy": {"lowering": {"cosine": 1.0, "euclidean": 1.0, "sqnr": 99.0}, "verdict": "stand-in"},
    "simulator_vs_fp32_export": {"mean_error_px": 0.0, "p95_error_px": 0.0, "pck_2px": 1.0},
}
(out / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
print("stand-in sophgo_tpu_mlir done")
