"""Vastai VAMC: the build yaml generated from the recipe, ``vamc build`` (docker/vastai_vamc/)."""

from pipelines.core.toolchain import Toolchain


TOOLCHAIN = Toolchain(
    name="vastai_vamc",
    kind="vendor",
    vendor="Vastai",
    summary="VAMC build to a vacc model suite",
    runner_label="vamc",
    int8_field="dtype",
    target_fields={'description': 'Vastai `vamc build` of the ONNX export to a vacc model suite.',
     'required': ['dtype'],
     'properties': {'dtype': {'enum': ['fp16', 'int8']},
                    'calibrate_mode': {'enum': ['max', 'percentile', 'kl_divergence', 'mse']},
                    'quantize_per_channel': {'type': 'boolean'},
                    'cluster_mode': {'type': 'integer', 'minimum': 0, 'maximum': 16}}},
)
