"""What every toolchain's runner shares: a photo becomes the model's input, the artifact runs, its
outputs become keypoints on the photo, drawn and written.

The photo (or the person's box in it) is resized to the model's input and normalised exactly as the
checks' held-out images are (posepipe_step.normalise); the outputs are decoded by the same code the
accuracy gates use (posepipe_step.keypoints) and mapped back through the box; the skeleton is the
dataset's own (decode.json, from MMPose's dataset meta). A runner only says how its toolchain runs one
batch of the artifact: ``predict(run)``, with run(batch) -> list of output arrays.
Inputs: /in/params.json (box, the model's facts), /in/photo, /in/artifact/<output>/. Output:
/out/<output>/ (keypoints.json, and the photo drawn as params "vis": vis.png or vis.jpg).
"""

import json
from pathlib import Path

from posepipe_step import OUT, PARAMS, fail, keypoints, normalise

ARTIFACT = Path("/in/artifact") / PARAMS["output"]
COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def predict(run):
    import numpy as np
    from PIL import Image, ImageDraw

    if PARAMS["task"] == "bottomup_associative_embedding":
        fail("predict decodes top-down models only so far; associative-embedding grouping is not written yet")
    decode = json.loads((ARTIFACT / "decode.json").read_text())
    photo = Image.open("/in/photo").convert("RGB")
    x0, y0, bw, bh = PARAMS.get("box") or (0, 0, photo.width, photo.height)
    if bw <= 0 or bh <= 0 or x0 < 0 or y0 < 0 or x0 + bw > photo.width or y0 + bh > photo.height:
        fail(f"the box {x0},{y0},{bw},{bh} is not inside the {photo.width}x{photo.height} photo")
    n, _, h, w = PARAMS["input"]["shape"]
    crop = photo.crop((x0, y0, x0 + bw, y0 + bh)).resize((w, h), Image.BILINEAR)
    batch = np.concatenate([normalise(crop)] * n)  # a fixed-batch artifact runs the photo in every slot
    outputs = [np.asarray(o) for o in run(batch)]
    points = keypoints(outputs)[0] * np.array([bw / w, bh / h], np.float32) + np.array([x0, y0], np.float32)

    names = decode["keypoints"]
    result = {"photo": [photo.width, photo.height], "box": [x0, y0, bw, bh], "keypoints":
              [{"name": name, "x": round(float(px), 2), "y": round(float(py), 2)} for name, (px, py) in zip(names, points)]}
    OUT.mkdir(parents=True)
    (OUT / "keypoints.json").write_text(json.dumps(result, indent=1) + "\n")

    draw = ImageDraw.Draw(photo)
    radius = max(2, round(min(photo.width, photo.height) / 150))
    for i, (a, b) in enumerate(decode.get("skeleton", [])):
        draw.line([tuple(points[a]), tuple(points[b])], fill=COLOURS[i % len(COLOURS)], width=max(1, radius // 2))
    for px, py in points:
        draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=(255, 255, 255), outline=(0, 0, 0))
    if PARAMS.get("box"):
        draw.rectangle([x0, y0, x0 + bw, y0 + bh], outline=(255, 255, 255))
    photo.save(OUT / PARAMS["vis"], PARAMS["image_format"])
    print(f"predict: {len(points)} keypoints on the {photo.width}x{photo.height} photo", flush=True)
