"""Arm Ethos-U microNPUs (in NXP i.MX93, Alif, Himax parts): a LiteRT target's full-integer .tflite compiled by
Arm's open vela for one accelerator configuration, with vela's performance estimate (docker/ethos_u/)."""

from collections.abc import Iterator, Mapping
from typing import Any

from pipelines.core.toolchain import Problem, Toolchain

SOURCE_TOOLCHAIN = "litert"  # the .tflite vela compiles is a target of this toolchain


class EthosU(Toolchain):
    def combines(self, target: Mapping[str, Any]) -> tuple[str, ...]:
        return (target["tflite"],)

    def problems(self, target: Mapping[str, Any], recipe: Mapping[str, Any]) -> Iterator[Problem]:
        named = next((t for t in recipe["targets"] if t["id"] == target["tflite"]), None)
        if named is not None and named["toolchain"] != SOURCE_TOOLCHAIN:
            yield ("tflite",), f"names {named['id']!r}, a {named['toolchain']} target; vela compiles a {SOURCE_TOOLCHAIN} target's .tflite"
        sizes = list(target.get("arena_cache_sizes", []))
        if sizes != sorted(set(sizes)):
            yield ("arena_cache_sizes",), "must grow: each size is tried after the one before it failed"

    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        estimate, ops = report.get("estimate"), report.get("operators")
        if not estimate:
            return {}
        return {"NPU inference ms (vela estimate)": estimate["inference_ms"], "NPU cycles": estimate["cycles_total"],
                "NPU operator share": ops["npu_share"], "SRAM KiB": estimate["sram_used_kib"]}


TOOLCHAIN = EthosU(
    name="ethos_u",
    kind="open",
    vendor="Arm",
    summary="Arm Ethos-U55/U65/U85 through vela (compiled here; estimated, not run)",
    runner_label="ubuntu-latest",
    verification=("none can run here (no Ethos-U simulator): labelled 'compiled', with vela's cycle estimate; the INT8 "
                  ".tflite it compiles is checked in its own LiteRT target"),
    target_fields={
        "description": "A LiteRT target's INT8 .tflite compiled by vela (model_vela.tflite, vela's summary.csv).",
        "required": ["tflite", "accelerator"],
        "properties": {
            "tflite": {"description": "The id of the litert target whose model.tflite vela compiles.",
                       "type": "string", "pattern": "^[a-z0-9][a-z0-9_]*$"},
            "accelerator": {"enum": ["ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256",
                                     "ethos-u65-512", "ethos-u85-128", "ethos-u85-256", "ethos-u85-512", "ethos-u85-1024",
                                     "ethos-u85-2048"]},
            "system_config": {"description": "A system configuration of vela's Arm/vela.ini (default: vela's for the "
                                             "accelerator, e.g. Ethos_U55_High_End_Embedded).",
                              "type": "string", "pattern": "^[A-Za-z0-9_]+$"},
            "memory_mode": {"description": "A memory mode of vela's Arm/vela.ini (e.g. Shared_Sram, Dedicated_Sram).",
                            "type": "string", "pattern": "^[A-Za-z0-9_]+$"},
            "arena_cache_sizes": {"description": "Arena cache sizes (bytes) to retry with, in order, when vela runs out of "
                                                 "SRAM with its default (its allocator can overshoot a limit by a few %).",
                                  "type": "array", "maxItems": 8, "items": {"type": "integer", "minimum": 65536}},
        },
    },
)
