"""What `posepipe evaluate` costs per image and per runner, measured side by side in one run.

Builds a recipe's open targets on a scratch checkout (a random-weight checkpoint of the real model made
in the mmpose image, synthetic calibration scenes, both served over loopback), makes a labelled set of
the generated test photos (tests/mmpose/make_photos.py; placeholder labels: the scores mean nothing, the
times are what this measures) and runs `invoke evaluate` on it. Prints per column: the runner's
milliseconds per input (a person's box; a photo for a bottom-up model) inside its step (timing.json: the
inference and decode loop alone), the evaluation step's wall time per input (container start, image
decoding and cropping included), and each column's runner time over the FP32 export's (PyTorch's), all
from the same run.
Usage: python3 bench/evaluate_bench.py [--smoke] [--openvino] [recipe]   (default face_deeppose; --openvino
adds the ov_* targets). --smoke runs the whole path in seconds so it cannot rot: the test stand-ins for the
export, the runners and the scorer (no model: its rows are labelled contract-test).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_bench import scratch_checkout  # noqa: E402
from bench.tpu_mlir_bench import scenes_zip  # noqa: E402
from pipelines.edges.containers.docker_driver import DockerDriver, Mount  # noqa: E402
from pipelines.edges.containers.images import ImageBuilder, load_toolchain  # noqa: E402
from tests.conftest import SHARED_STORE  # noqa: E402
from tests.httpserver import LoopbackServer  # noqa: E402


def photos(work: Path) -> Path:
    """The generated test photos and their figures' boxes, made in the mmpose image."""
    driver = DockerDriver.from_env()
    image = ImageBuilder(driver, ROOT / "docker", SHARED_STORE).ensure(load_toolchain(ROOT / "docker", "mmpose")).id
    out = work / "photos"
    out.mkdir()
    os.chown(out, 1000, 1000) if os.geteuid() == 0 else None
    script = ROOT / "tests" / "mmpose" / "make_photos.py"
    res = driver.run(image=image, command=["/opt/venv/bin/python", "/in/make_photos.py"],
                     mounts=[Mount(script, "/in/make_photos.py"), Mount(out, "/out", False)], env={"MPLCONFIGDIR": "/tmp"},
                     label="bench/photos", log_path=work / "photos.log", on_line=lambda line: None, timeout=900)
    if res.exit_code:
        sys.exit((work / "photos.log").read_text()[-3000:])
    return out


def labelled_set(folder: Path | None, keypoints: int) -> bytes:
    """A zip with annotations.json (COCO keypoints, every keypoint at its box's centre) and the photos; without
    photos (smoke), a few synthetic scenes with one box each."""
    if folder is None:
        scenes = zipfile.ZipFile(io.BytesIO(scenes_zip(count=4, size=64)))
        files = {f"photos/{i:02d}.png": scenes.read(n) for i, n in enumerate(sorted(scenes.namelist()))}
        boxes = {name.removeprefix("photos/"): {"size": [64, 64], "boxes": [[8, 8, 40, 48]]} for name in files}
    else:
        boxes = json.loads((folder / "boxes.json").read_text())
        files = {f"photos/{name}": (folder / "photos" / name).read_bytes() for name in boxes}
    images, anns = [], []
    for image_id, (name, facts) in enumerate(sorted(boxes.items()), start=1):
        images.append({"id": image_id, "file_name": f"photos/{name}", "width": facts["size"][0], "height": facts["size"][1]})
        for x, y, w, h in facts["boxes"]:
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "bbox": [x, y, w, h], "area": w * h,
                         "iscrowd": 0, "num_keypoints": keypoints, "keypoints": [x + w / 2, y + h / 2, 2] * keypoints})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("annotations.json", json.dumps({"images": images, "annotations": anns,
                                                   "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}]}))
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="face_deeppose")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--openvino", action="store_true", help="also the OpenVINO targets")
    args = parser.parse_args()
    name = args.recipe
    with tempfile.TemporaryDirectory() as d, LoopbackServer() as server:
        work = Path(d)
        scratch_checkout(work / "repo", server, (name,), real=not args.smoke, calibration=scenes_zip(),
                         extra=("openvino",) if args.openvino and not args.smoke else ())
        recipe_file = work / "repo" / "recipes" / f"{name}.yaml"
        text = re.sub(r"max_keypoint_error_px: \S+", "max_keypoint_error_px: 100000", recipe_file.read_text())
        recipe_file.write_text(re.sub(r"max_normalized_error: \S+", "max_normalized_error: 100000", text))
        keypoints = re.search(r"outputs:\n\s+- name: \S+\n\s+shape: \[\d+, (\d+)", text).group(1)
        data = work / "set.zip"
        data.write_bytes(labelled_set(None if args.smoke else photos(work), int(keypoints)))
        env = {**os.environ, "POSEPIPE_ROOT": str(work / "repo"), "POSEPIPE_STORE": str(SHARED_STORE), "CI": "1"}
        res = subprocess.run([sys.executable, "-m", "invoke", "evaluate", "--recipe", name, "--data", str(data), "--jobs", "1"],
                             cwd=ROOT, env=env, capture_output=True, text=True)
        if res.returncode:
            sys.exit(f"evaluate {name} failed ({res.returncode}):\n{res.stderr[-4000:]}")
        walls = {m[1]: float(m[2]) for m in re.finditer(rf"(?:ran|cached)\s+{re.escape(name)}/(\S+)/evaluate\s+([\d.]+) s", res.stderr)}
        art = work / "repo" / "artifacts" / name
        print(f"{name}: evaluate on {data.name}, one run; runner ms/input (inference + decode), step wall ms/input, "
              "runner time / the FP32 export's")
        reference = None
        for target in sorted(p.name for p in art.iterdir() if p.is_dir()):
            manifest = json.loads((art / target / "manifest.json").read_text())
            e = manifest["evaluation"][0]
            if reference is None:
                reference = e["fp32_export_seconds_per_input"]
                print(f"  {'export (PyTorch)':18s} {1000 * reference:9.1f} {1000 * walls['export'] / e['inputs']:9.1f}   1.00x")
            ratio = e["seconds_per_input"] / reference if reference else float("nan")
            print(f"  {target:18s} {1000 * e['seconds_per_input']:9.1f} {1000 * walls[target] / e['inputs']:9.1f}   "
                  f"{ratio:.2f}x   {e['instances']} instances, {e['images']} images, label {manifest['label']}")
        shutil.rmtree(work / "repo" / "artifacts")


if __name__ == "__main__":
    main()
