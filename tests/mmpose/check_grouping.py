"""Runs inside the mmpose image: posepipe's numpy decoding of associative-embedding outputs against MMPose's own.

The runners group a bottom-up model's keypoints without MMPose or PyTorch (posepipe_predict.group); here the same
synthetic heatmaps and tag maps (three people, gaussian peaks, per-person tags with noise, one person missing a
keypoint) are decoded both ways: MMPose 1.3.2's head path (bilinear restore to the input size with PyTorch, then
its AssociativeEmbedding codec's batch_decode) and posepipe's. Also checks the Hungarian matching against
SciPy's linear_sum_assignment on random matrices. Writes /out/check.json for the test to judge.
Inputs: /in/params.json (the model's facts), /in/artifact/decode.json (the codec settings).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, "/opt/posepipe")
import mmcv_ops_stub  # noqa: E402

mmcv_ops_stub.install()
from mmpose.codecs import AssociativeEmbedding  # noqa: E402
from posepipe_predict import assignment, group  # noqa: E402

K, H, W, SIZE = 17, 128, 128, 512


def synthetic(rng):
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    maps = np.zeros((K, H, W), np.float32)
    tags = rng.normal(0, 0.05, (K, H, W)).astype(np.float32)
    for person, tag in enumerate((-2.0, 0.5, 3.0)):
        centre = rng.uniform(20, 108, 2)
        for k in range(K):
            if person == 2 and k == 9:
                continue  # a keypoint this person lacks: filled from its tag
            px, py = centre + rng.uniform(-15, 15, 2)
            blob = np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * 2.0 ** 2)) * rng.uniform(0.5, 1.0)
            maps[k] = np.maximum(maps[k], blob)
            tags[k] += np.where(blob > 0.05, tag, 0).astype(np.float32)
    return maps, tags


def main():
    rng = np.random.default_rng(7)
    codec = json.loads(Path("/in/artifact/decode.json").read_text())["codec"]
    settings = {k: v for k, v in codec.items() if k != "type"}
    mmpose_codec = AssociativeEmbedding(**{**settings, "heatmap_size": settings["input_size"]})
    report = {"people": []}
    for _ in range(3):
        maps, tags = synthetic(rng)
        restore = [F.interpolate(torch.from_numpy(m)[None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)
                   for m in (maps, tags)]
        theirs, their_scores, _ = mmpose_codec.batch_decode(*restore)
        ours = group(maps, tags)
        order = np.argsort([p[0, 0] for p in theirs[0]]) if len(theirs[0]) else []
        mine = sorted(ours, key=lambda person: person[0][0, 0])
        report["people"].append({
            "mmpose": len(theirs[0]), "posepipe": len(ours),
            "max_keypoint_diff": max((float(np.abs(theirs[0][i] - p).max()) for i, (p, _) in zip(order, mine)), default=0.0),
            "max_score_diff": max((float(np.abs(their_scores[0][i] - s).max()) for i, (_, s) in zip(order, mine)), default=0.0),
        })
    worst = 0.0
    for n, m in ((5, 5), (4, 9), (7, 12)):
        cost = rng.normal(0, 100, (n, m)).round()
        rows, cols = linear_sum_assignment(cost)
        mine = assignment(cost)
        worst = max(worst, abs(cost[rows, cols].sum() - sum(cost[r, c] for r, c in mine)))
        assert sorted(r for r, _ in mine) == list(range(n)) and len({c for _, c in mine}) == n
    report["assignment_cost_diff"] = float(worst)
    Path("/out/check.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
