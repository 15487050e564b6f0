"""The catalog page in a real browser (Debian's headless Chromium): screenshot and DOM."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from pipelines.commands import publish as publishing
from pipelines.core import catalog_page
from pipelines.core.layout import Layout

from .test_artifacts import make_artifact

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._cells, self._in = [], None, False

    def handle_starttag(self, tag, attrs):
        if tag == "tr" and dict(attrs).get("data-recipe"):
            self._cells = []
        elif tag == "td" and self._cells is not None:
            self._in = True
            self._cells.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in = False
        elif tag == "tr" and self._cells is not None:
            self.rows.append(self._cells)
            self._cells = None

    def handle_data(self, data):
        if self._in:
            self._cells[-1] += data


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_catalog_renders_in_chromium(tmp_path):
    assert CHROMIUM, "Debian's chromium is installed by .ci/run"
    dest = tmp_path / "published"
    for target, check in (("ort_fp32", "passed"), ("ort_int8", "failed")):
        make_artifact(Layout(tmp_path / f"repo-{target}", tmp_path / "store"), target=target, check=check,
                      shown=target == "ort_fp32")
        publishing.publish(Layout(tmp_path / f"repo-{target}", tmp_path / "store"), "face_deeppose", target, dest, "v1", None,
                           allow_unverified=True)
    page = (dest / "index.html").as_uri()
    dom = chromium("--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Rows()
    parser.feed(dom.stdout)
    assert [r[:2] for r in parser.rows] == [["face_deeppose", "ort_fp32"], ["face_deeppose", "ort_int8"]]
    first = parser.rows[0]
    assert first[4] == "v1" and first[8] == "unsigned" and first[9] == "verified" and "int8 mean error px: 0.4" in first[10]
    assert parser.rows[1][9] == "compiled"  # a failed check: the page says plainly that no check vouches for it
    assert first[11] == "scenes.zip: NME 0.013 (+0.013 vs FP32)"  # its evaluation beside the FP32 export's
    assert '<img src="face_deeppose/ort_fp32/v1/preview.png"' in dom.stdout  # its preview, published beside it
    assert parser.rows[1][11] == "—" and parser.rows[1][12] == "—"  # no evaluation, no preview picture
    assert first[13].startswith("posepipe download --recipe face_deeppose --target ort_fp32 --version v1")
    shot = tmp_path / "catalog.png"
    res = chromium(f"--screenshot={shot}", "--window-size=1400,500", page)
    assert res.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000


def test_an_entry_without_a_label_is_shown_as_unknown_not_verified():
    entry = {"toolchain": "onnxruntime", "output": "x", "size": 10, "sha256": "a" * 64, "published": 0, "signed": False,
             "verification": {}}
    parser = Rows()
    parser.feed(catalog_page.render({"recipes": {"r": {"t": {"v1": entry}}}}))
    assert parser.rows[0][9] == "unknown"


def test_figures_are_read_by_the_toolchain_of_the_step_that_wrote_the_report():
    """Each step's report is read by its own toolchain's definition, whatever its keys: a bmodel's
    simulator figures and an OpenVINO IR's difference reach the catalog as ONNX Runtime's do."""
    agreement = {"mean_error_px": 0.5, "p95_error_px": 1.5, "pck_2px": 0.9}
    manifest = {
        "steps": [{"id": "r/export@b1", "toolchain": "mmpose"}, {"id": "r/bm", "toolchain": "sophgo_tpu_mlir"},
                  {"id": "r/ov", "toolchain": "openvino"}, {"id": "r/old"}],
        "verification": {"r/export@b1/export.json": {"max_abs_diff": {"onnxruntime": {"seeded": 2e-6}}},
                         "r/bm/report.json": {"simulator_vs_fp32_export": agreement},
                         "r/ov/report.json": {"ir_vs_export_max_abs_diff": 0.002},
                         "r/old/report.json": {"accuracy_int8_vs_fp32": agreement}},  # no toolchain named: not read
    }
    assert catalog_page.figures(manifest) == {
        "export max abs diff": 2e-6, "simulator mean error px": 0.5, "simulator p95 error px": 1.5,
        "simulator PCK@2px": 0.9, "IR max abs diff": 0.002}
