"""What every toolchain's runner shares: photos become the model's input, the artifact runs, its outputs
become keypoints on the photos: one photo drawn (``posepipe predict``) or a labelled set predicted
(``posepipe evaluate``).

A person's box (the whole photo when none is given) becomes the model's input as MMPose's top-down
pipeline makes it: the box padded by 1.25 and widened to the input's aspect ratio (bbox_xywh2cs,
_fix_aspect_ratio), then an affine warp with bilinear sampling and black outside the photo
(TopdownAffine); the pixels are normalised as the checks' held-out images are
(posepipe_step.normalise). The outputs are decoded by the same code the accuracy gates use
(posepipe_step.decode) and mapped back through the box as MMPose maps them. A runner only says how its
toolchain runs batches of the artifact: ``predict(run)``, with run(list of batches) -> an iterable of
output lists, one per batch, in order (a generator, or one simulator process for all of them).
Inputs: /in/params.json ("stage" predict or evaluate, the model's facts), /in/artifact/<output>/, and
/in/photo (predict) or /in/annotations and /in/images (evaluate). Output: /out/<output>/: keypoints.json
and the photo drawn as params "vis" (predict); predictions.json and timing.json (evaluate).
"""

import io
import json
import tarfile
import time
import zipfile
from pathlib import Path

from posepipe_step import OUT, PARAMS, decode, fail, normalise

ARTIFACT = Path("/in/artifact") / PARAMS.get("output", "")
PADDING = 1.25  # MMPose's GetBBoxCenterScale default
CHUNK = 64  # instances decoded and cropped at a time while predicting a labelled set
COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def bottom_up():
    """An associative-embedding model finds every person in its input; a top-down one reads one person's box."""
    return PARAMS["task"] == "bottomup_associative_embedding"


def center_scale(box):
    """(center x, center y, scale w, scale h) of a box x, y, w, h: padded (top-down; a bottom-up model takes the
    box as it is, as BottomupResize's 'fit' mode takes the photo), then widened to the input's aspect."""
    x, y, bw, bh = (float(v) for v in box)
    _, _, h, w = PARAMS["input"]["shape"]
    padding = 1.0 if bottom_up() else PADDING
    sw, sh = bw * padding, bh * padding
    if sw > sh * w / h:
        sh = sw * h / w
    else:
        sw = sh * w / h
    return x + bw / 2, y + bh / 2, sw, sh


def warp(photo, cs):
    """The model's input crop of ``photo`` (PIL, RGB) for center/scale ``cs``: OpenCV's warpAffine of the
    same matrix, written with PIL (whose pixel centres sit at +0.5)."""
    from PIL import Image

    _, _, h, w = PARAMS["input"]["shape"]
    cx, cy, sw, sh = cs
    a, e = sw / w, sh / h
    data = (a, 0.0, cx - sw / 2 + 0.5 - 0.5 * a, 0.0, e, cy - sh / 2 + 0.5 - 0.5 * e)
    return photo.transform((w, h), Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=(0, 0, 0))


def to_photo(points, cs):
    """Keypoints in input pixels -> photo pixels (MMPose: keypoints / input_size * scale + center - scale / 2)."""
    import numpy as np

    _, _, h, w = PARAMS["input"]["shape"]
    cx, cy, sw, sh = cs
    return points / np.array([w, h], np.float32) * np.array([sw, sh], np.float32) + np.array([cx - sw / 2, cy - sh / 2], np.float32)


def people(outputs):
    """Per batch item, the people its outputs hold as [(keypoints (K, 2) in input pixels, scores (K,))]: one per
    top-down input (posepipe_step.decode), every one found by a bottom-up model (grouped by tag)."""
    if bottom_up():
        return [group(maps, tags) for maps, tags in zip(outputs[0], outputs[1])]
    points, scores = decode(outputs)
    return [[(p, s)] for p, s in zip(points, scores)]


def infer(run, crops):
    """The people found in each (photo, cs) of ``crops``, in photo pixels, and the seconds each batch took in
    ``run`` and decoding. Crops are grouped into the artifact's fixed batch size; the last batch is filled by
    repeating its last crop."""
    import numpy as np

    n = PARAMS["input"]["shape"][0]
    inputs = [normalise(warp(photo, cs)) for photo, cs in crops]
    inputs += [inputs[-1]] * (-len(inputs) % n)
    batches = [np.concatenate(inputs[i:i + n]) for i in range(0, len(inputs), n)]
    found, times, start = [], [], time.monotonic()
    for outputs in run(batches):
        found += people([np.asarray(o) for o in outputs])
        times.append(time.monotonic() - start - sum(times))
    return [[(to_photo(p, cs), s) for p, s in persons] for persons, (_, cs) in zip(found, crops)], times


# ----------------------------------------------------------------------------- associative embedding


def restored(maps, h, w):
    """(C, H', W') maps resized to (C, h, w) as PyTorch's bilinear interpolate with align_corners=False does
    (MMPose's restore_heatmap_size), as two matrix products."""
    import numpy as np

    def weights(size, source):
        at = np.clip((np.arange(size) + 0.5) * source / size - 0.5, 0, None)
        low = np.minimum(np.floor(at).astype(int), source - 1)
        high, frac = np.minimum(low + 1, source - 1), (at - low).astype(np.float32)
        m = np.zeros((size, source), np.float32)
        np.add.at(m, (np.arange(size), low), 1 - frac)
        np.add.at(m, (np.arange(size), high), frac)
        return m

    return weights(h, maps.shape[1]) @ maps.astype(np.float32) @ weights(w, maps.shape[2]).T


def peaks(maps, kernel):
    """``maps`` kept only where they are the maximum of their kernel x kernel window (MMPose's heatmap NMS)."""
    import numpy as np

    pad = (kernel - 1) // 2
    padded = np.pad(maps, ((0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    h, w = maps.shape[1:]
    rows = np.max([padded[:, i:i + h, :] for i in range(kernel)], axis=0)
    window = np.max([rows[:, :, j:j + w] for j in range(kernel)], axis=0)
    return np.where(maps == window, maps, 0)


def assignment(cost):
    """The least-cost match of every row of ``cost`` (rows <= columns) to a distinct column, as (row, column)
    pairs: the Hungarian method, which MMPose runs through munkres to match keypoints to people."""
    n, m = cost.shape
    u, v, match, way = [0.0] * (n + 1), [0.0] * (m + 1), [0] * (m + 1), [0] * (m + 1)
    for row in range(1, n + 1):
        match[0], col = row, 0
        least, used = [float("inf")] * (m + 1), [False] * (m + 1)
        while match[col]:
            used[col] = True
            here, delta, nxt = match[col], float("inf"), 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = cost[here - 1, j - 1] - u[here] - v[j]
                    if reduced < least[j]:
                        least[j], way[j] = reduced, col
                    if least[j] < delta:
                        delta, nxt = least[j], j
            for j in range(m + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                else:
                    least[j] -= delta
            col = nxt
        while col:
            match[col], col = match[way[col]], way[col]
    return [(match[j] - 1, j - 1) for j in range(1, m + 1) if match[j]]


def group(maps, tags):
    """The people in one input from its heatmaps (K, H, W) and tag maps (K, H, W), as MMPose's
    AssociativeEmbedding codec decodes them with the export's codec settings (decode.json): maps restored to
    the input size, peaks kept (NMS), the top candidates of each keypoint matched to people by tag distance in
    the codec's keypoint order, refined, shifted, and each person's missing keypoints filled from its tag.
    MMPose's test also averages a flipped input; this decodes the model's one output as it is."""
    import numpy as np

    codec = json.loads((ARTIFACT / "decode.json").read_text())["codec"]
    _, _, h, w = PARAMS["input"]["shape"]
    k = maps.shape[0]
    maps, tags = restored(maps, h, w), restored(tags, h, w)
    found = peaks(maps, codec.get("decode_nms_kernel", 5)).reshape(k, -1)
    top = np.argsort(-found, axis=1, kind="stable")[:, :codec.get("decode_topk", 30)]
    values = np.take_along_axis(found, top, axis=1)
    where = np.stack([top % w, top // w], axis=-1).astype(np.float32)
    candidates = np.take_along_axis(tags.reshape(k, -1), top, axis=1)
    order = codec.get("decode_keypoint_order") or list(range(k))
    persons = []  # [keypoints (K, 3): x, y, score; its tags]
    for kp in order:
        keep = values[kp] > codec.get("decode_keypoint_thr", 0.1)
        joints, joint_tags = np.concatenate([where[kp][keep], values[kp][keep, None]], axis=1), candidates[kp][keep]
        if not persons:
            for joint, tag in zip(joints, joint_tags):
                persons.append((np.zeros((k, 3), np.float32), [tag]))
                persons[-1][0][kp] = joint
            continue
        if not len(joints):
            continue
        grouped = len(persons)
        means = np.array([np.mean(t) for _, t in persons])
        distance = np.abs(joint_tags[:, None] - means[None, :])
        cost = np.round(distance) * 100 - joints[:, 2:3]
        if len(joints) > grouped:
            cost = np.concatenate([cost, np.full((len(joints), len(joints) - grouped), 1e10)], axis=1)
        for row, col in assignment(cost):
            if col < grouped and distance[row, col] < codec.get("decode_tag_thr", 1.0):
                persons[col][0][kp] = joints[row]
                persons[col][1].append(joint_tags[row])
            else:
                persons.append((np.zeros((k, 3), np.float32), [joint_tags[row]]))
                persons[-1][0][kp] = joints[row]
    persons = persons[:codec.get("decode_max_instances") or None]
    out = []
    for person, _ in persons:
        points, scores = person[:, :2].copy(), person[:, 2].copy()
        found_here = scores > 0
        points = refine(points, maps) + codec.get("decode_center_shift", 0.0) * found_here[:, None]
        tag = np.mean([tags[j, np.clip(int(y), 0, h - 1), np.clip(int(x), 0, w - 1)]  # at the refined places
                       for j, (x, y) in enumerate(points) if found_here[j]])
        for j in np.flatnonzero(~found_here):  # missing: the best place whose tag is this person's
            y, x = np.unravel_index(np.argmin(np.round(np.abs(tags[j] - tag)) * 100 - maps[j]), (h, w))
            points[j], scores[j] = (x, y), maps[j, y, x]
        out.append((points.astype(np.float32), scores.astype(np.float32)))
    return out


def refine(points, maps):
    """Each keypoint moved 0.25 pixel towards the higher neighbour on each axis (MMPose's refine_keypoints)."""
    import numpy as np

    h, w = maps.shape[1:]
    out = points.copy()
    for j, (x, y) in enumerate(points.astype(int)):
        dx = maps[j, y, x + 1] - maps[j, y, x - 1] if 1 < x < w - 1 and 0 < y < h else 0.0
        dy = maps[j, y + 1, x] - maps[j, y - 1, x] if 1 < y < h - 1 and 0 < x < w else 0.0
        out[j] += 0.25 * np.sign([dx, dy])
    return out


# ----------------------------------------------------------------------------- predict, evaluate


def predict(run):
    """The runner's entry point: the step's stage says whether it draws one photo or predicts a labelled set."""
    if PARAMS["stage"] == "evaluate":
        predict_set(run)
    else:
        predict_photo(run)


def listing(names, points, scores):
    return [{"name": name, "x": round(float(px), 2), "y": round(float(py), 2), "score": round(float(s), 4)}
            for name, (px, py), s in zip(names, points, scores)]


def predict_photo(run):
    """One photo: keypoints.json and the photo drawn (a bottom-up model: every person it found, the likeliest
    first in "people", and that one's keypoints as "keypoints"). With params "compare" (this artifact is then
    the FP32 export), the compared target's keypoints (/in/compare) are drawn as the skeleton and this
    artifact's as red rings, and the JSON gives both and how far apart they are."""
    import numpy as np
    from PIL import Image, ImageDraw

    decode_facts = json.loads((ARTIFACT / "decode.json").read_text())
    photo = Image.open("/in/photo").convert("RGB")
    x0, y0, bw, bh = PARAMS.get("box") or (0, 0, photo.width, photo.height)
    if bw <= 0 or bh <= 0 or x0 < 0 or y0 < 0 or x0 + bw > photo.width or y0 + bh > photo.height:
        fail(f"the box {x0},{y0},{bw},{bh} is not inside the {photo.width}x{photo.height} photo")
    [found], _ = infer(run, [(photo, center_scale((x0, y0, bw, bh)))])
    if not found:
        fail("the model found no person in the photo (no keypoint above the codec's threshold)")
    found.sort(key=lambda person: -float(np.mean(person[1])))
    names = decode_facts["keypoints"]
    points, scores = found[0]
    result = {"photo": [photo.width, photo.height], "box": [x0, y0, bw, bh], "keypoints": listing(names, points, scores)}
    if bottom_up():
        result["people"] = [{"score": round(float(np.mean(s)), 4), "keypoints": listing(names, p, s)} for p, s in found]
    skeletons, rings = [p for p, _ in found], None
    if PARAMS.get("compare"):
        other = json.loads((Path("/in/compare") / PARAMS["compare"]["output"] / "keypoints.json").read_text())
        theirs = np.array([[k["x"], k["y"]] for k in other["keypoints"]], np.float32)
        distance = np.linalg.norm(theirs - points, axis=-1)
        result.update(target=PARAMS["compare"]["target"], keypoints=other["keypoints"], fp32_export=result["keypoints"],
                      distance_px=[round(float(d), 3) for d in distance], mean_distance_px=round(float(distance.mean()), 3))
        skeletons, rings = [theirs], points
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "keypoints.json").write_text(json.dumps(result, indent=1) + "\n")

    draw = ImageDraw.Draw(photo)
    radius = max(2, round(min(photo.width, photo.height) / 150))
    for skeleton in skeletons:
        for i, (a, b) in enumerate(decode_facts.get("skeleton", [])):
            draw.line([tuple(skeleton[a]), tuple(skeleton[b])], fill=COLOURS[i % len(COLOURS)], width=max(1, radius // 2))
        for px, py in skeleton:
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=(255, 255, 255), outline=(0, 0, 0))
    for px, py in [] if rings is None else rings:
        draw.ellipse([px - 2 * radius, py - 2 * radius, px + 2 * radius, py + 2 * radius], outline=(255, 0, 0))
    if PARAMS.get("box"):
        draw.rectangle([x0, y0, x0 + bw, y0 + bh], outline=(255, 255, 255))
    photo.save(OUT / PARAMS["vis"], PARAMS["image_format"])
    print(f"predict: {len(found)} person(s), {len(points)} keypoints each, on the {photo.width}x{photo.height} photo", flush=True)


class Members:
    """Named files of a zip or tar archive (or one plain file), read on demand."""

    def __init__(self, path):
        self.path = path
        if zipfile.is_zipfile(path):
            self.zip, self.names = zipfile.ZipFile(path), None
        elif tarfile.is_tarfile(path):
            self.zip, self.tar = None, tarfile.open(path)
            self.names = {m.name.removeprefix("./"): m for m in self.tar.getmembers() if m.isfile()}
        else:
            self.zip = self.names = None

    def read(self, name):
        if self.zip is not None:
            try:
                return self.zip.read(name)
            except KeyError:
                pass
        elif self.names is not None:
            if name in self.names:
                return self.tar.extractfile(self.names[name]).read()
        elif not name:
            return Path(self.path).read_bytes()
        fail(f"the labelled set has no file {name!r} in {Path(self.path).name}")


def labelled_set():
    """The set's COCO-style annotations and the instances to predict: every person annotation that has a
    box and at least one labelled keypoint, in the first ``limit`` such images by id."""
    data = json.loads(Members("/in/annotations").read(PARAMS["annotations_member"] or ""))
    if not isinstance(data, dict) or not {"images", "annotations"} <= data.keys():
        fail("the labelled set's annotations are not COCO keypoints JSON (no 'images' and 'annotations')")
    usable = [a for a in data["annotations"] if not a.get("iscrowd") and a.get("num_keypoints", 1) > 0
              and len(a.get("bbox", ())) == 4 and a["bbox"][2] > 0 and a["bbox"][3] > 0]
    image_ids = sorted({a["image_id"] for a in usable})[:PARAMS.get("limit") or None]
    if not image_ids:
        fail("the labelled set has no annotation with a box and a labelled keypoint")
    wanted = set(image_ids)
    return data, image_ids, sorted((a for a in usable if a["image_id"] in wanted), key=lambda a: (a["image_id"], a["id"]))


def predict_set(run):
    """Every input of the labelled set (a person's box, top-down; a whole photo, bottom-up), CHUNK at a time
    (a chunk's crops are what is held in memory)."""
    from PIL import Image

    data, image_ids, instances = labelled_set()
    files = {im["id"]: im["file_name"] for im in data["images"]}
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    images = Members("/in/images")
    inputs = [{"image_id": i, "bbox": [0, 0, *sizes[i]]} for i in image_ids] if bottom_up() else instances
    print(f"evaluate: {len(inputs)} input(s) from {len(image_ids)} image(s)", flush=True)
    results, times, photo = [], [], (None, None)
    for start in range(0, len(inputs), CHUNK):
        chunk, crops = inputs[start:start + CHUNK], []
        for a in chunk:
            if photo[0] != a["image_id"]:
                encoded = images.read(PARAMS["images_prefix"] + files[a["image_id"]])
                photo = (a["image_id"], Image.open(io.BytesIO(encoded)).convert("RGB"))
            crops.append((photo[1], center_scale(a["bbox"])))
        found, spent = infer(run, crops)
        times += spent
        for a, persons, (_, cs) in zip(chunk, found, crops):
            for points, scores in persons:
                flat = [round(float(v), 3) for p, s in zip(points, scores) for v in (p[0], p[1], s)]
                result = {"image_id": a["image_id"], "category_id": a.get("category_id", 1), "keypoints": flat}
                if not bottom_up():  # which labelled person it was, and the crop it was read from
                    result.update(annotation_id=a["id"], bbox=a["bbox"], bbox_scale=[round(cs[2], 3), round(cs[3], 3)])
                results.append(result)
        print(f"progress {start + len(chunk)}/{len(inputs)} inputs", flush=True)  # the console shows it beside the step
    decode_facts = json.loads((ARTIFACT / "decode.json").read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    predictions = {"dataset": decode_facts.get("dataset"), "keypoints": decode_facts["keypoints"], "bottom_up": bottom_up(),
                   "image_ids": image_ids, "results": results}
    (OUT / "predictions.json").write_text(json.dumps(predictions) + "\n")
    (OUT / "timing.json").write_text(json.dumps(timing(times, len(inputs)), indent=1) + "\n")
    print(f"evaluate: {len(results)} prediction(s) from {len(inputs)} input(s), {sum(times):.2f} s in the runner", flush=True)


def timing(times, inputs):
    """What running the set cost, per input too (all of it: a runtime's warm-up in its first batch, and a
    simulator's one process for a chunk's batches, are part of what a set costs)."""
    return {"inputs": inputs, "batches": len(times), "seconds": sum(times), "first_batch_seconds": times[0],
            "seconds_per_input": sum(times) / inputs}
