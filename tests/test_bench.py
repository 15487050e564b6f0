"""Every benchmark runs in its quick smoke mode, so none can silently stop working."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pipelines.core.layout import REPO_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def bench(*args: str) -> str:
    res = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return res.stdout


@pytest.mark.alone
def test_engine_bench_smoke():
    out = bench("bench/engine_bench.py", "--smoke")
    assert "containers started during the no-op builds: 0" in out and "ratio" in out


def test_ort_bench_smoke():
    out = bench("bench/ort_bench.py", "--smoke")
    ms, ratio = r"([\d.]+)", r"([\d.]+)x"
    row = re.search(rf"^face_deeppose +{' +'.join([ms] * 3 + [ratio] * 3 + [ms] * 2 + [ratio] * 3)}$", out, re.M)
    assert row, out  # export, ort fp32, ort int8 ms, three ratios, ov fp16, ov int8 ms, three ratios
    export_ms, fp32_ms, int8_ms, fp32_ratio, ov16_ms, ov8_ms, ov8_ratio = (float(row[i]) for i in (1, 2, 3, 4, 7, 8, 10))
    assert min(export_ms, fp32_ms, int8_ms, ov16_ms, ov8_ms) > 0
    assert printed_ratio_of(fp32_ratio, fp32_ms, export_ms) and printed_ratio_of(ov8_ratio, ov8_ms, export_ms)


def printed_ratio_of(ratio: float, num_ms: float, den_ms: float) -> bool:
    """Whether ``ratio`` (printed to 0.01) can be num/den of the two times printed to 0.1 ms: the smoke's
    times are about a millisecond, so the rounding of each is a few percent of the ratio."""
    return (num_ms - 0.05) / (den_ms + 0.05) - 0.005 <= ratio <= (num_ms + 0.05) / (den_ms - 0.05) + 0.005


def test_fetch_bench_smoke():
    out = bench("bench/fetch_bench.py", "--size-mib", "8", "--rounds", "1")
    speeds = re.search(r"download: curl (\d+) MiB/s, posepipe (\d+) MiB/s", out)
    ratio = re.search(r"throughput ratio posepipe/curl = ([\d.]+)x", out)
    assert speeds and ratio and float(ratio[1]) > 0, out


def test_tpu_mlir_bench_smoke():
    out = bench("bench/tpu_mlir_bench.py", "--smoke")  # stand-ins: the table's path, not a compile
    row = re.search(r"^  bm1684_mlir_int8_b1 +(\S+) +([\d.]+) +1\.0 / 1\.0 / 99\.0 \(stand-in\) +0\.00 / 0\.00 +1\.00 +label (\S+)$",
                    out, re.M)
    assert row and row[3] == "contract-test", out


@pytest.mark.alone
def test_remote_cache_bench_smoke():
    out = bench("bench/remote_cache_bench.py", "--smoke")
    assert "containers started on machine B: 0" in out and "ratio B/A" in out


def test_evaluate_bench_smoke():
    out = bench("bench/evaluate_bench.py", "--smoke")  # stand-ins: the table's path, no model
    assert re.search(r"^  export \(PyTorch\) +[\d.]+ +[\d.]+ +1\.00x$", out, re.M), out
    rows = re.findall(r"^  (ort_\w+) +[\d.]+ +[\d.]+ +\S+ +1 instances, 1 images, label (\S+)$", out, re.M)
    assert rows == [("ort_fp32", "contract-test"), ("ort_int8", "contract-test")], out
