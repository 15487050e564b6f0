"""Contract tests of the Sophgo BM1684 stage against stand-in bmneto / ufw / bm_model.bin."""

from __future__ import annotations

import json

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.core.errors import NotImplementedYet
from pipelines.core.layout import Layout

from .conftest import TEST_TOOLCHAINS, standin_vendor_image, vendor_checkout, zip_of

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ARCHIVE = zip_of({f"val2017/{i:012d}.jpg": b"\xff\xd8 stand-in" for i in range(3)})


@pytest.fixture
def built(tmp_path, monkeypatch) -> Layout:
    image = standin_vendor_image(TEST_TOOLCHAINS / "sophgo_standin")
    with vendor_checkout(tmp_path, monkeypatch, "sophgo_nntc", image, ["hrnet_sophon"], ARCHIVE, 3) as lay:
        with pytest.raises(NotImplementedYet, match="ort_fp32"):  # its ONNX Runtime targets are not in this checkout
            build(lay, BuildRequest("hrnet_sophon", progress=False))
        yield lay


def calls(lay: Layout, target: str) -> list[dict]:
    path = lay.artifacts / "hrnet_sophon" / target / "contract-calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fp32_uses_bmneto_at_the_targets_batch(built):
    (call, info) = calls(built, "bm1684_fp32_b4")
    assert call["call"] == "bmneto" and info["call"] == "bm_model.bin --info"
    assert call["argv"] == ["--model=/in/model/model.onnx", "--shapes=[[4,3,256,192]]", "--target=BM1684",
                            "--outdir=/tmp/sophgo/out", "--net_name=hrnet_fp32_4b", "--opt=2", "--dyn=false", "--cmp=true"]
    out = built.artifacts / "hrnet_sophon" / "bm1684_fp32_b4" / "hrnet_fp32_4b"
    assert "BM1684" in (out / "bmodel_info.txt").read_text()
    assert "[[4,3,256,192]]" in (out / "compilation.bmodel").read_text()


def test_int8_calibrates_with_the_recipes_images_and_normalisation(built):
    call = calls(built, "bm1684_int8_b1")[0]
    argv = call["argv"]
    opt = dict(zip(argv[0::2], argv[1::2]))
    assert call["call"] == "ufw.cali.cali_model" and opt["--model"] == "/in/model/model.onnx"
    assert opt["--cali_image_preprocess"] == (
        "resize_h=256,resize_w=192;mean_value=103.53:116.28:123.675,scale=0.017429194:0.017507003:0.017124754,bgr2rgb=True"
    )
    assert opt["--input_shapes"] == "[1,3,256,192]" and call["calibration_files"] == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert "--cali_iterations=3" in argv and "--target=BM1684" in argv
    assert "--convert_bmodel_cmd_opt=-outdir=/tmp/sophgo/out --target=BM1684 -opt=2 -v=4" in argv


def test_combined_bmodel_merges_batch_1_and_4(built):
    combine = calls(built, "bm1684_int8_b1b4")[0]
    assert combine["call"] == "bm_model.bin --combine"
    assert combine["argv"] == ["--combine", "/in/bm1684_int8_b1/hrnet_int8_1b/compilation.bmodel",
                               "/in/bm1684_int8_b4/hrnet_int8_4b/compilation.bmodel", "-o", "/out/hrnet_int8_1b4b/compilation.bmodel"]
    out = built.artifacts / "hrnet_sophon" / "bm1684_int8_b1b4" / "hrnet_int8_1b4b"
    assert {p.name for p in out.iterdir()} == {"compilation.bmodel", "bmodel_info.txt"}
    assert "[1,3,256,192]" in (out / "compilation.bmodel").read_text() and "[4,3,256,192]" in (out / "compilation.bmodel").read_text()
