"""Sophgo BMNNSDK2 (NNTC) for BM1684 / SE5: bmneto, ufw.cali, bm_model.bin (docker/sophgo_nntc/)."""

from pipelines.core.toolchain import Toolchain


TOOLCHAIN = Toolchain(
    name="sophgo_nntc",
    kind="vendor",
    vendor="Sophgo",
    summary="BMNNSDK2 NNTC for BM1684 / SE5 (.bmodel)",
    runner_label="bmnnsdk2",
    int8_field="quantize",
    combine_field="combine",
    target_fields={'description': 'Sophgo BMNNSDK2 (NNTC) bmodel for BM1684 / SE5.',
     'oneOf': [{'required': ['chip', 'quantize', 'batch'], 'not': {'required': ['combine']}},
               {'required': ['chip', 'combine'], 'not': {'required': ['quantize']}}],
     'properties': {'chip': {'const': 'BM1684'},
                    'quantize': {'enum': ['fp32', 'int8']},
                    'batch': {'type': 'integer', 'minimum': 1, 'maximum': 64},
                    'calibration_iterations': {'type': 'integer', 'minimum': 1, 'maximum': 100000},
                    'combine': {'description': "Merge these targets' bmodels with `bm_model.bin --combine`.",
                                'type': 'array',
                                'minItems': 2,
                                'maxItems': 8,
                                'uniqueItems': True,
                                'items': {'$ref': '#/$defs/identifier'}}}},
)
