"""Runs inside the mmpose image: trains a tiny heatmap model on a synthetic keypoint task.

Three coloured blobs on a noisy background; the keypoints are their centres. A few hundred
steps give heatmaps with real peaks, which an INT8 accuracy gate needs (random weights give
flat heatmaps, where any quantisation "agrees"). Writes to /out:
  model/model.onnx, model/export.json, model/decode.json  - what the export stage would give
  calibration.zip         - 24 calibration + 16 held-out scenes (PNG)
  broken_calibration.zip  - the same, but the 24 calibration scenes darkened to 10 %
  train.json              - FP32 error against the true keypoints on the held-out scenes
"""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIZE, STRIDE, K = 64, 4, 3
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
COLOURS = np.array([[230, 40, 40], [40, 230, 40], [40, 40, 230]], np.float32)
OUT = Path("/out")


def scene(rng):
    img = rng.uniform(60, 120, (SIZE, SIZE, 3)).astype(np.float32)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    pts = rng.uniform(8, SIZE - 8, (K, 2)).astype(np.float32)
    for (px, py), colour in zip(pts, COLOURS):
        img[(x - px) ** 2 + (y - py) ** 2 < 25] = colour
    return img.astype(np.uint8), pts


def normalise(imgs):
    return torch.from_numpy(((imgs.astype(np.float32) - MEAN) / STD).transpose(0, 3, 1, 2).copy())


def targets(pts):
    hm = SIZE // STRIDE
    y, x = np.mgrid[0:hm, 0:hm].astype(np.float32)
    c = pts / STRIDE - 0.5
    return torch.from_numpy(np.exp(-((x - c[..., 0, None, None]) ** 2 + (y - c[..., 1, None, None]) ** 2) / 2))


def decode(hm):
    n, k, h, w = hm.shape
    ys, xs = np.divmod(hm.reshape(n, k, -1).argmax(-1), w)
    return np.stack([(xs + 0.5) * STRIDE, (ys + 0.5) * STRIDE], -1)


torch.manual_seed(0)
rng = np.random.default_rng(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
    torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
    torch.nn.Conv2d(32, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
    torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
    torch.nn.Conv2d(32, K, 1),
)
opt = torch.optim.Adam(net.parameters(), lr=3e-3)
for step in range(400):
    batch = [scene(rng) for _ in range(16)]
    x = normalise(np.stack([b[0] for b in batch]))
    t = targets(np.stack([b[1] for b in batch]))
    loss = ((net(x) - t) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
net.eval()

(OUT / "model").mkdir()
torch.onnx.export(net, (torch.zeros(1, 3, SIZE, SIZE),), str(OUT / "model" / "model.onnx"), dynamo=False,
                  opset_version=11, input_names=["input"], output_names=["heatmaps"])
(OUT / "model" / "export.json").write_text(json.dumps({"max_abs_diff": {}}))
(OUT / "model" / "decode.json").write_text(json.dumps({"note": "tiny synthetic model"}))

scenes = [scene(np.random.default_rng(1000 + i)) for i in range(40)]
held = scenes[24:]
with torch.no_grad():
    pred = decode(net(normalise(np.stack([s[0] for s in held]))).numpy())
err = np.linalg.norm(pred - np.stack([s[1] for s in held]), axis=-1)
(OUT / "train.json").write_text(json.dumps({"loss": float(loss), "fp32_mean_error_px": float(err.mean())}))


def write_zip(path, images):
    with zipfile.ZipFile(path, "w") as z:
        for i, img in enumerate(images):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            z.writestr(f"scenes/{i:03d}.png", buf.getvalue())


write_zip(OUT / "calibration.zip", [s[0] for s in scenes])
write_zip(OUT / "broken_calibration.zip", [(s[0] * 0.1).astype(np.uint8) for s in scenes[:24]] + [s[0] for s in held])
print(json.dumps({"loss": float(loss), "fp32_mean_error_px": float(err.mean())}))
