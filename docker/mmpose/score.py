"""Score one column of `posepipe evaluate`: a runner's predictions on a labelled set, by MMPose's own metrics.

The metrics are the ones the recipe's MMPose config evaluates its test set with (``test_evaluator``:
CocoMetric for COCO bodies, NME for faces, PCKAccuracy/AUC/EPE for hands ...), built from MMPose's
registry with the config's own dataset meta (sigmas, the NME eye-corner indices), and fed the
predictions and the set's ground truth as MMPose's evaluation loop feeds them. CocoMetric reads the
set's annotations narrowed to the images that were predicted (an image left out is no miss).
Inputs: /in/params.json, /in/predictions/<output>/predictions.json (the runner's), /in/annotations (the
set's COCO keypoints JSON, or an archive holding it). Output: /out/score.json (the figures, the metrics'
settings, and how many images and predicted people were scored).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from export import load_config, pose_meta  # the same config and meta the export used
from mmpose.registry import METRICS
from posepipe_predict import Members
from posepipe_step import PARAMS, fail

WORK = Path(tempfile.mkdtemp(prefix="score"))


def samples(predictions: dict, annotations: dict[int, dict], sizes: dict[int, tuple[int, int]]) -> list[dict]:
    """The predictions as MMPose's data samples: for a top-down model one per labelled person, with its ground
    truth and the crop it was read from; for a bottom-up one, one per photo with every person found in it."""
    def found(results):
        points = np.array([r["keypoints"] for r in results], np.float32).reshape(len(results), -1, 3)
        return {"keypoints": points[..., :2], "keypoint_scores": points[..., 2]}

    if predictions["bottom_up"]:
        by_image = {i: [] for i in predictions["image_ids"]}
        for r in predictions["results"]:
            by_image[r["image_id"]].append(r)
        return [{"id": i, "img_id": i, "category_id": 1, "ori_shape": sizes[i][::-1], "gt_instances": {},
                 "pred_instances": found(results) if results else {"keypoints": np.zeros((0, 0, 2)), "keypoint_scores": np.zeros((0, 0))}}
                for i, results in by_image.items()]
    out = []
    for r in predictions["results"]:
        ann = annotations[r["annotation_id"]]
        truth = np.array(ann["keypoints"], np.float32).reshape(-1, 3)
        x, y, w, h = ann["bbox"]
        out.append({
            "id": ann["id"], "img_id": ann["image_id"], "category_id": ann.get("category_id", 1),
            "ori_shape": sizes[ann["image_id"]][::-1], "pred_instances": found([r]),
            "gt_instances": {"keypoints": truth[None, :, :2], "keypoints_visible": np.minimum(1, truth[None, :, 2]),
                             "bboxes": np.array([[x, y, x + w, y + h]], np.float32),
                             "bbox_scales": np.array([r["bbox_scale"]], np.float32), "bbox_scores": np.ones(1)},
        })
    return out


def evaluators(cfg) -> list[dict]:
    found = cfg.get("test_evaluator") or cfg.get("val_evaluator")
    if not found:
        fail(f"the MMPose config {PARAMS['mmpose']['config_1x']} names no test_evaluator, so there is no metric to score with")
    return [dict(e) for e in (found if isinstance(found, (list, tuple)) else [found])]


def main() -> None:
    predictions = json.loads(next(Path("/in/predictions").rglob("predictions.json")).read_text())
    data = json.loads(Members("/in/annotations").read(PARAMS["annotations_member"] or ""))
    wanted = set(predictions["image_ids"])
    data = {**data, "images": [im for im in data["images"] if im["id"] in wanted],
            "annotations": [a for a in data["annotations"] if a["image_id"] in wanted]}
    narrowed = WORK / "annotations.json"
    narrowed.write_text(json.dumps(data))
    cfg = load_config()
    meta = pose_meta(cfg)
    batch = samples(predictions, {a["id"]: a for a in data["annotations"]},
                    {im["id"]: (im["width"], im["height"]) for im in data["images"]})
    figures, used = {}, []
    for spec in evaluators(cfg):
        if spec["type"] == "CocoMetric":
            spec.update(ann_file=str(narrowed), outfile_prefix=str(WORK / "coco"))
        metric = METRICS.build(spec)
        metric.dataset_meta = meta
        metric.process([], batch)
        figures.update({k: float(v) for k, v in metric.compute_metrics(metric.results).items()})
        used.append({k: v for k, v in spec.items() if k not in ("ann_file", "outfile_prefix")})
    score = {"metrics": used, "figures": figures, "dataset": meta.get("dataset_name"),
             "images": len(wanted), "instances": len(predictions["results"])}
    Path("/out/score.json").write_text(json.dumps(score, indent=1, sort_keys=True) + "\n")
    print("score: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    main()
