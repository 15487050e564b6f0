"""Runs inside the mmpose image: the test photos for predict and evaluate, generated here, so every pixel's origin
is this script (seeded; no third-party picture, nothing downloaded; public domain like the rest of the tests).

Each photo is an outdoor-like scene (sky, ground, sun, trees, a fence, grain) with one or two figures made of
a head, a torso and limbs; figure sizes and places vary, and one photo in four has a figure cut by the
photo's edge. Writes /out/photos/NN.jpg (JPEG, quality 90) and /out/boxes.json: per photo its size and each
figure's box [x, y, w, h], which the tests use as the labelled instances' boxes.
"""

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

COUNT, OUT = 24, Path("/out")


def scene(rng, width, height):
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = np.array([90, 150, 230], np.float32) * (1 - y) + np.array([200, 220, 240], np.float32) * y
    img = np.broadcast_to(sky, (height, width, 3)).copy()
    horizon = int(height * rng.uniform(0.45, 0.7))
    img[horizon:] = np.array(rng.choice([[70, 130, 60], [150, 130, 90], [110, 110, 110]]), np.float32)
    img += rng.normal(0, 6, img.shape).astype(np.float32)  # grain
    photo = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(photo)
    sx, sy, r = rng.uniform(0, width), rng.uniform(0, horizon / 2), rng.uniform(8, 20)
    draw.ellipse([sx - r, sy - r, sx + r, sy + r], fill=(250, 230, 120))
    for _ in range(rng.integers(2, 6)):  # trees
        tx, th = rng.uniform(0, width), rng.uniform(30, 90)
        draw.rectangle([tx - 3, horizon - th * 0.4, tx + 3, horizon + 4], fill=(90, 60, 30))
        draw.ellipse([tx - th / 4, horizon - th, tx + th / 4, horizon - th * 0.35], fill=(30, int(rng.uniform(90, 140)), 40))
    for fx in range(0, width, 14):  # fence
        draw.line([fx, horizon + 6, fx, horizon + 22], fill=(200, 190, 170), width=2)
    return photo, draw, horizon


def figure(rng, draw, x, feet, tall):
    """A standing figure whose feet are at (x, feet), ``tall`` pixels high; its box [x, y, w, h]."""
    head = tall * 0.13
    skin = tuple(int(v) for v in rng.choice([[240, 200, 170], [200, 150, 110], [140, 95, 60]]))
    cloth = tuple(int(v) for v in rng.integers(20, 235, 3))
    neck, hip = feet - tall + 2 * head, feet - tall * 0.48
    limb = max(2, int(tall * 0.06))
    sway = rng.uniform(-0.25, 0.25) * tall
    for side in (-1, 1):  # legs, then arms
        draw.line([x + side * tall * 0.05, hip, x + side * tall * 0.12 + sway * (side > 0), feet], fill=(40, 40, 60), width=limb)
        elbow = (x + side * tall * 0.2, neck + tall * 0.12 + rng.uniform(-0.1, 0.1) * tall)
        draw.line([(x + side * tall * 0.1, neck + 4), elbow, (elbow[0] + side * tall * 0.08, elbow[1] + rng.uniform(-0.2, 0.2) * tall)],
                  fill=skin, width=limb)
    draw.rounded_rectangle([x - tall * 0.12, neck, x + tall * 0.12, hip + tall * 0.05], radius=limb, fill=cloth)
    draw.ellipse([x - head, neck - 2 * head, x + head, neck], fill=skin)
    draw.ellipse([x - head * 0.45, neck - 1.3 * head, x - head * 0.2, neck - 1.05 * head], fill=(30, 30, 30))  # eyes
    draw.ellipse([x + head * 0.2, neck - 1.3 * head, x + head * 0.45, neck - 1.05 * head], fill=(30, 30, 30))
    left, right = x - tall * 0.32 + min(sway, 0), x + tall * 0.32 + max(sway, 0)
    return [left, neck - 2 * head, right - left, feet - (neck - 2 * head)]


def main():
    rng = np.random.default_rng(20261207)
    (OUT / "photos").mkdir(parents=True)
    boxes = {}
    for i in range(COUNT):
        width, height = int(rng.choice([320, 288, 256])), int(rng.choice([240, 256, 320]))
        photo, draw, horizon = scene(rng, width, height)
        found = []
        for _ in range(1 + (i % 3 == 0)):
            tall = rng.uniform(0.5, 0.9) * height
            x = rng.uniform(0.2, 0.8) * width if i % 4 else rng.uniform(-0.05, 0.05) * width + width * (i % 8 == 0)
            feet = min(height - 2, horizon + rng.uniform(0.1, 0.4) * (height - horizon))
            found.append(figure(rng, draw, x, feet, tall))
        photo = photo.filter(ImageFilter.GaussianBlur(0.6))
        name = f"{i:02d}.jpg"
        photo.save(OUT / "photos" / name, "JPEG", quality=90)
        boxes[name] = {"size": [width, height], "boxes": [clip(b, width, height) for b in found]}
    (OUT / "boxes.json").write_text(json.dumps(boxes, indent=1) + "\n")


def clip(box, width, height):
    """The box inside the photo, in whole pixels (a figure cut by the edge keeps the part that shows)."""
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(width, int(box[0] + box[2]) + 1), min(height, int(box[1] + box[3]) + 1)
    return [x0, y0, x1 - x0, y1 - y0]


if __name__ == "__main__":
    main()
