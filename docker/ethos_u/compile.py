"""Arm Ethos-U: a LiteRT target's full-integer .tflite compiled by vela for one Ethos-U configuration.

vela is run as its documentation shows (`vela --accelerator-config ... --show-cpu-operations model.tflite`, with
`--config Arm/vela.ini --system-config ... --memory-mode ...` when the target names them: vela's own file). Its
allocator can overshoot the SRAM it is given (a U65's default arena cache: "Memory used 407040, limit
393216"), so a failed allocation is retried with the next arena cache size of the target's ladder; every
attempt is recorded. The figures are vela's own estimate (its summary CSV: cycles, inference time at the
system's clock, SRAM and flash used) and the operators it leaves to the CPU, with vela's reasons. The
compiled model runs only on an Ethos-U (no simulator here), so nothing checks it: its target is labelled
`compiled`, and the INT8 .tflite it came from keeps its own check.
Inputs: /in/params.json, /in/<the LiteRT target's id>/ (its outputs). Output: /out/<output>/model_vela.tflite,
summary.csv (vela's), decode.json (the source's), report.json.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from pathlib import Path

from posepipe_step import OUT, SETTINGS as S, fail, run_capture, write_report

CONFIG = "Arm/vela.ini"  # the system configurations and memory modes vela ships
WORK = Path(tempfile.mkdtemp(prefix="vela"))
SHORT_OF_MEMORY = re.compile(r"Memory used (\d+), limit (\d+)")
FALLBACK = re.compile(r"operator: (\w+), ofm: '([^']*)'\s*\nReason: ([^\n]*)")


def source() -> Path:
    found = sorted(Path("/in", S["tflite"]).rglob("model.tflite"))
    if not found:
        fail(f"the target {S['tflite']} left no model.tflite to compile")
    return found[0]


def compile_once(model: Path, arena: int | None) -> tuple[int, str, Path]:
    out = Path(tempfile.mkdtemp(prefix="out", dir=WORK))
    argv = ["/opt/venv/bin/vela", "--accelerator-config", S["accelerator"], "--show-cpu-operations", "--output-dir", out, model]
    named = [(flag, S[key]) for flag, key in (("--system-config", "system_config"), ("--memory-mode", "memory_mode")) if key in S]
    if named:  # vela takes its .ini only with a named configuration; its defaults come from the same file
        argv[1:1] = ["--config", CONFIG, *(v for pair in named for v in pair)]
    if arena is not None:
        argv[1:1] = ["--arena-cache-size", str(arena)]
    code, output = run_capture(argv, cwd=WORK)
    return code, output, out


def main() -> None:
    model = WORK / "model.tflite"
    shutil.copyfile(source(), model)
    attempts = []
    for arena in [None, *S.get("arena_cache_sizes", [])]:
        code, output, out = compile_once(model, arena)
        short = SHORT_OF_MEMORY.search(output)
        attempts.append({"arena_cache_size": arena, "result": "compiled" if code == 0 else
                         (f"memory used {short[1]}, limit {short[2]}" if short else f"vela exited with {code}")})
        if code == 0 or not short:
            break
    if code != 0:
        tried = "; ".join(f"arena {a['arena_cache_size'] or 'default'}: {a['result']}" for a in attempts)
        fail(f"vela could not compile the model for {S['accelerator']} ({tried})" + ("" if short else "; see its output above"))
    summary = next(out.glob("*_summary_*.csv"))
    with summary.open() as f:
        row = next(csv.DictReader(f))
    OUT.mkdir(parents=True)
    shutil.copyfile(next(out.glob("*_vela.tflite")), OUT / "model_vela.tflite")
    shutil.copyfile(summary, OUT / "summary.csv")
    shutil.copyfile(source().with_name("decode.json"), OUT / "decode.json")
    counts = {k: int(v) for k, v in re.findall(r"(CPU|NPU) operators = (\d+)", output)}
    fallbacks = [{"op": op, "tensor": tensor, "reason": reason.strip()} for op, tensor, reason in FALLBACK.findall(output)]
    write_report({
        "vela": {
            "accelerator": row["accelerator_configuration"], "system_config": row["system_config"],
            "memory_mode": row["memory_mode"], "core_clock_hz": float(row["core_clock"]),
            "arena_cache_size": float(row["arena_cache_size"]), "attempts": attempts,
        },
        "estimate": {
            "cycles_total": float(row["cycles_total"]), "cycles_npu": float(row["cycles_npu"]),
            "inference_ms": 1000 * float(row["inference_time"]), "inferences_per_second": float(row["inferences_per_second"]),
            "sram_used_kib": float(row["sram_memory_used"]), "off_chip_flash_used_kib": float(row["off_chip_flash_memory_used"]),
            "dram_used_kib": float(row["dram_memory_used"]), "macs": float(row["nn_macs"]),
        },
        "operators": {"npu": counts.get("NPU", 0), "cpu": counts.get("CPU", 0),
                      "npu_share": counts.get("NPU", 0) / max(1, counts.get("NPU", 0) + counts.get("CPU", 0)),
                      "on_cpu": fallbacks},
        "model_vela_bytes": (OUT / "model_vela.tflite").stat().st_size,
        "checks": [],  # nothing here can run an Ethos-U model: its label is 'compiled'
    })


if __name__ == "__main__":
    main()
