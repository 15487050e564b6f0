"""RKNN runner. The toolkit's simulator cannot load a .rknn from a file, so the model is rebuilt here in-process
from what the artifact's step built it from (the export, the target's rewrites and settings, the calibration
images), and must first give the artifact's recorded simulator outputs on a held-out image (report.json):
then it is the model that was checked. posepipe_predict does the rest."""

import json
import os

from compile import WORK, build, calibration_files, digests, prepared_model, raw_pixels, simulate
from posepipe_predict import ARTIFACT, predict
from posepipe_step import SETTINGS as S, fail, held_out_inputs


def main() -> None:
    os.chdir(WORK)  # the toolkit writes its intermediate graphs into the working folder
    recorded = json.loads((ARTIFACT / "report.json").read_text())["simulator_outputs_sha256"][0]
    first = held_out_inputs()[0]
    model, _ = prepared_model([first], None)
    toolkit = build(model, calibration_files() if S["quantize"] == "INT8" else [], verbose=False)
    if digests(simulate(toolkit, [raw_pixels(first)]))[0] != recorded:
        fail("the model rebuilt to run in the simulator does not give the artifact's recorded simulator outputs on "
             "its first held-out image, so it is not the model that was checked; rebuild the target")
    predict(lambda batches: (simulate(toolkit, [raw_pixels(x)])[0] for x in batches))


if __name__ == "__main__":
    main()
