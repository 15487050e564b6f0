"""ONNX Runtime runner: the artifact's model.onnx on the CPU execution provider (posepipe_predict does the rest)."""

from posepipe_predict import ARTIFACT, predict


def main() -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(ARTIFACT / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    predict(lambda batches: (session.run(None, {name: x}) for x in batches))


if __name__ == "__main__":
    main()
