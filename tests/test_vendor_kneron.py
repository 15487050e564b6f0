"""Contract tests of the Kneron stage against a stand-in ktc (never a verified build)."""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.core.errors import NotImplementedYet
from pipelines.edges.containers.images import ImageBuilder, load_toolchain
from pipelines.core.layout import REPO_ROOT, Layout

from .conftest import SHARED_STORE, TEST_TOOLCHAINS, standin_vendor_image, vendor_checkout, zip_of

pytestmark = [pytest.mark.docker, pytest.mark.slow]
def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, written by hand (no imaging library on the host)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# mean grey, white, black: the normalised calibration arrays must reflect the recipe's mean and std
ARCHIVE = zip_of({f"val2017/{i:012d}.jpg": png(32, 24, c) for i, c in enumerate([(123, 116, 104), (255, 255, 255), (0, 0, 0)])})


@pytest.fixture
def built(tmp_path, monkeypatch) -> Layout:
    driver = DockerDriver.from_env()
    ort = ImageBuilder(driver, REPO_ROOT / "docker", SHARED_STORE).ensure(load_toolchain(REPO_ROOT / "docker", "onnxruntime")).id
    image = standin_vendor_image(TEST_TOOLCHAINS / "kneron_standin", base=ort)
    with vendor_checkout(tmp_path, monkeypatch, "kneron", image, ["litehrnet"], ARCHIVE, 3) as lay:
        with pytest.raises(NotImplementedYet, match="ort_fp32"):  # no ONNX Runtime stage in this checkout
            build(lay, BuildRequest("litehrnet", progress=False))
        yield lay


def calls(lay: Layout, target: str) -> list[dict]:
    path = lay.artifacts / "litehrnet" / target / "contract-calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("target,platform", [("kl520", "520"), ("kl720", "720")])
def test_ktc_flow_matches_the_documented_sequence(built, target, platform):
    rec = calls(built, target)
    assert [r["call"] for r in rec] == [
        "ktc.onnx_optimizer.torch_exported_onnx_flow", "ktc.ModelConfig", "ModelConfig.evaluate", "ModelConfig.analysis",
        "ktc.compile", "ktc.kneron_inference", "ktc.kneron_inference",
    ]
    assert rec[1] | {"call": None, "cwd": None} == {"call": None, "cwd": None, "id": 32769, "version": "0001",
                                                     "platform": platform, "has_model": True}
    analysis = rec[3]
    assert analysis["names"] == ["input"] and analysis["count"] == {"input": 3}
    assert analysis["shapes"]["input"] == [[1, 3, 256, 192]] * 3  # NCHW at the model's input size
    # the recipe's normalisation: a mean-grey image is ~0, white and black are far from it
    assert abs(analysis["mean"]["input"] - ((255 - 116.28) / 57.12 + (0 - 116.28) / 57.12) / 3) < 0.2
    assert rec[4]["platforms"] == [platform]
    assert rec[6]["nef_file"] == f"/tmp/kneron_flow/models_{platform}.nef" and rec[6]["platform"] == int(platform)
    out = built.artifacts / "litehrnet" / target / f"litehrnet_{target}"
    assert {p.name for p in out.iterdir()} == {f"models_{platform}.nef", "model.quan.wqbi.bie", "model.opt.onnx", "report.json"}
    assert json.loads((out.parent / "manifest.json").read_text())["label"] == "contract-test"
