"""Renesas DRP-AI TVM for RZ/V in DRP-AI mode: deploy.so/.params/.json + preprocess/ per target
(docker/drpai_tvm/; CPU-only mode needs no Translator and is the open ``drpai_tvm_cpu``).

Renesas' per-board table (rzv_drp-ai_tvm ``tutorials/README.md``, v1.0.4 and v1.1.0) gives
the DRP-AI ``addr_map_start`` of each product. The seeds set 0x438E0000, the RZ/V2MA value,
so a recipe names its product and a value that does not belong to it is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipelines.core.toolchain import Problem, Toolchain

ADDR_MAP_START: dict[str, int] = {"V2L": 0x838E0000, "V2M": 0xC38E0000, "V2MA": 0x438E0000}


def as_int(value: int | str) -> int:
    return value if isinstance(value, int) else int(value, 16)


class DrpAiTvm(Toolchain):
    def normalise(self, target: dict[str, Any]) -> dict[str, Any]:
        return {**target, "addr_map_start": as_int(target["addr_map_start"])}

    def problems(self, t: Mapping[str, Any], recipe: Mapping[str, Any]) -> Iterator[Problem]:
        expected = ADDR_MAP_START[t["product"]]
        got = as_int(t["addr_map_start"])
        if got != expected:
            yield ("addr_map_start",), (
                f"0x{got:08X} is not the DRP-AI start address of RZ/{t['product']} "
                f"(expected 0x{expected:08X}; V2L 0x838E0000, V2M 0xC38E0000, V2MA 0x438E0000)"
            )
        crop = t.get("preprocess_runtime", {}).get("crop")
        shape_in = t.get("preprocess_runtime", {}).get("shape_in")
        if crop and shape_in and (crop[0] + crop[2] > shape_in[2] or crop[1] + crop[3] > shape_in[1]):
            yield ("preprocess_runtime", "crop"), f"crop {crop} does not fit the {shape_in[2]}x{shape_in[1]} input"


TOOLCHAIN = DrpAiTvm(
    name="drpai_tvm",
    kind="vendor",
    vendor="Renesas",
    summary="DRP-AI TVM for RZ/V (deploy.so/.params/.json)",
    runner_label="drpai-tvm",
    target_fields={'description': 'Renesas DRP-AI TVM compile in DRP-AI mode (compile_pytorch_model.py / compile_onnx_model.py).',
     'required': ['mode', 'frontend', 'product', 'addr_map_start', 'preprocess_runtime'],
     'properties': {'mode': {'description': 'DRP-AI mode (the Translator); CPU-only mode is the open '
                                            'drpai_tvm_cpu toolchain.', 'const': 'drpai'},
                    'frontend': {'enum': ['torchscript', 'onnx']},
                    'product': {'enum': ['V2L', 'V2M', 'V2MA']},
                    'addr_map_start': {'description': "DRP-AI start address; must be the product's value "
                                                      '(quote hex strings).',
                                       'anyOf': [{'type': 'string', 'pattern': '^0x[0-9A-Fa-f]{1,8}$'},
                                                 {'type': 'integer', 'minimum': 0, 'maximum': 4294967295}]},
                    'preprocess_runtime': {'description': 'Input side of the DRP-AI Pre-processing Runtime '
                                                          'block; resize and normalize come from the model.',
                                           'type': 'object',
                                           'additionalProperties': False,
                                           'required': ['shape_in', 'format_in'],
                                           'properties': {'shape_in': {'type': 'array',
                                                                       'minItems': 4,
                                                                       'maxItems': 4,
                                                                       'items': {'type': 'integer',
                                                                                 'minimum': 1,
                                                                                 'maximum': 8192}},
                                                          'format_in': {'enum': ['YUYV_422',
                                                                                 'YUV420',
                                                                                 'RGB',
                                                                                 'BGR',
                                                                                 'GRAY']},
                                                          'crop': {'description': '[top-left x, top-left y, '
                                                                                  'width, height] in input '
                                                                                  'pixels.',
                                                                   'type': 'array',
                                                                   'minItems': 4,
                                                                   'maxItems': 4,
                                                                   'items': {'type': 'integer',
                                                                             'minimum': 0,
                                                                             'maximum': 8192}}}}}},
)
