"""Sophgo TPU-MLIR for BM1684: model_transform, run_calibration, model_deploy (docker/sophgo_tpu_mlir/)."""

from pipelines.core.toolchain import Toolchain


TOOLCHAIN = Toolchain(
    name="sophgo_tpu_mlir",
    kind="vendor",
    vendor="Sophgo",
    summary="TPU-MLIR for BM1684 (.bmodel), the newer route",
    runner_label="tpu-mlir",
    int8_field="quantize",
    target_fields={'description': 'Sophgo TPU-MLIR (the newer route): model_transform, run_calibration, model_deploy --chip '
                    'bm1684.',
     'required': ['chip', 'quantize', 'batch'],
     'properties': {'chip': {'const': 'bm1684'},
                    'quantize': {'enum': ['F32', 'INT8']},
                    'batch': {'type': 'integer', 'minimum': 1, 'maximum': 64}}},
)
