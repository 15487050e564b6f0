"""OpenVINO runner: the artifact's IR on the CPU plugin at f32, as its check ran it (posepipe_predict does the rest)."""

from compile import decline_telemetry
from posepipe_predict import ARTIFACT, predict


def main() -> None:
    decline_telemetry()
    import openvino as ov

    compiled = ov.Core().compile_model(str(ARTIFACT / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def run(batches):
        for x in batches:
            result = compiled(x)
            yield [result[out] for out in compiled.outputs]

    predict(run)


if __name__ == "__main__":
    main()
