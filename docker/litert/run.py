"""LiteRT runner: the artifact's full-integer model.tflite in the LiteRT interpreter, as its check ran it
(posepipe_predict does the rest)."""

import json

from compile import Quantised
from posepipe_predict import ARTIFACT, predict


def main() -> None:
    model = Quantised(ARTIFACT / "model.tflite", json.loads((ARTIFACT / "decode.json").read_text())["tflite"]["outputs"])
    predict(lambda batches: (model(x) for x in batches))


if __name__ == "__main__":
    main()
