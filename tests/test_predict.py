"""`predict` for real: a random-weight DeepPose built through `invoke build`'s steps, then run by its toolchain's
runner on a photo in the toolchain's image; what it writes, how the box maps keypoints back, and its errors."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from pathlib import Path

import pytest

from pipelines.commands.build import BuildRequest
from pipelines.commands.predict import parse_box, predict
from pipelines.core.errors import StepFailed, UsageError
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.containers.images import load_toolchain

from .test_pipeline import checkout, mmpose_image, random_weight_recipe, scenes, server  # noqa: F401

def photo_from(scenes: Path, dest: Path) -> tuple[Path, tuple[int, int]]:
    """One synthetic scene as a photo file, and its width and height (from the PNG header)."""
    with zipfile.ZipFile(scenes / "calibration.zip") as z:
        name = sorted(n for n in z.namelist() if n.endswith(".png"))[0]
        dest.write_bytes(z.read(name))
    return dest, png_size(dest)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.docker
@pytest.mark.images("onnxruntime", "calibration")
@pytest.mark.slow
def test_predict_draws_the_artifacts_keypoints_on_the_photo(mmpose_image, scenes, server, checkout, tmp_path):  # noqa: F811
    text, _ = random_weight_recipe("face_deeppose", mmpose_image, scenes, server, tmp_path)
    (checkout.recipes / "face_deeppose.yaml").write_text(text)
    photo, (width, height) = photo_from(scenes, tmp_path / "photo.png")
    request = BuildRequest("face_deeppose", "ort_fp32", progress=False)

    whole = predict(checkout, request, photo, tmp_path / "whole.png")
    assert png_size(tmp_path / "whole.png") == (width, height)  # the photo itself, drawn on
    assert (tmp_path / "whole.png").read_bytes() != photo.read_bytes()
    assert json.loads((tmp_path / "whole.json").read_text()) == whole
    assert len(whole["keypoints"]) == 98 and whole["box"] == [0, 0, width, height]
    names = [k["name"] for k in whole["keypoints"]]
    assert len(set(names)) == 98  # WFLW's own names, from the export's decode.json

    # the whole photo given as a box is the same input: the same keypoints
    again = predict(checkout, request, photo, tmp_path / "again.png", f"0,0,{width},{height}")
    assert [(k["x"], k["y"]) for k in again["keypoints"]] == [(k["x"], k["y"]) for k in whole["keypoints"]]
    jpeg = predict(checkout, request, photo, tmp_path / "vis.jpg", "8,4,40,44")
    assert (tmp_path / "vis.jpg").read_bytes()[:3] == b"\xff\xd8\xff" and jpeg["box"] == [8, 4, 40, 44]
    assert jpeg["keypoints"] != whole["keypoints"]  # another crop, another input

    with pytest.raises(StepFailed, match="is not inside the"):  # the step knows the photo's size
        predict(checkout, request, photo, tmp_path / "x.png", f"0,0,{width + 1},{height}")
    with pytest.raises(UsageError, match=r"give a \.png or \.jpg"):
        predict(checkout, request, photo, tmp_path / "x.gif")
    with pytest.raises(UsageError, match="no such file"):
        predict(checkout, request, tmp_path / "missing.png", tmp_path / "x.png")


@pytest.mark.parametrize("text, why", [("1,2,3", "four whole numbers"), ("a,b,c,d", "four whole numbers"),
                                       ("0,0,0,5", "above 0"), ("-1,0,5,5", "four whole numbers")])
def test_a_bad_box_is_refused_naming_the_option(text, why):
    with pytest.raises(UsageError, match=why) as e:
        parse_box(text)
    assert "--box" in str(e.value)


def test_a_photo_enters_the_store_by_its_sha256_readable_by_a_steps_user(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff not really a jpeg")
    store = BlobStore(tmp_path / "store")
    sha = store.add(photo)
    assert sha == hashlib.sha256(photo.read_bytes()).hexdigest() and store.add(photo) == sha
    assert store.blob_path(sha).read_bytes() == photo.read_bytes()
    assert store.blob_path(sha).stat().st_mode & 0o777 == 0o644  # steps run as another user and mount it read-only


def test_a_toolchain_without_a_runner_says_it_cannot_run_its_artifacts(tmp_path):
    folder = tmp_path / "docker" / "tc"
    folder.mkdir(parents=True)
    (folder / "toolchain.yaml").write_text("command: [python3, /opt/posepipe/compile.py]\n")
    spec = load_toolchain(tmp_path / "docker", "tc")
    assert spec.argv("command") == ("python3", "/opt/posepipe/compile.py")
    with pytest.raises(UsageError, match="toolchain tc cannot run its artifacts here"):
        spec.argv("run")
    (folder / "toolchain.yaml").write_text("command: [python3, /c.py]\nrun: [python3, /opt/posepipe/run.py]\n")
    assert load_toolchain(tmp_path / "docker", "tc").argv("run") == ("python3", "/opt/posepipe/run.py")
