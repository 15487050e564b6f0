"""Export an MMPose model the way the seed documents do by hand, then prove the exports agree.

Inputs: /in/params.json (from posepipe's planner) and /in/checkpoint (fetched by hash).
Outputs in /out: model.pt (TorchScript trace) and/or model.onnx, export.json (versions,
shapes, max abs differences) and decode.json (what a board app needs to decode outputs
without MMPose). Exits non-zero, saying why, when shapes or parity are off.
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "/opt/posepipe")
import mmcv_ops_stub  # noqa: E402

mmcv_ops_stub.install()

import mmengine  # noqa: E402
import mmpose  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpose.datasets.datasets.utils import parse_pose_metainfo  # noqa: E402
from mmpose.registry import DATASETS, MODELS  # noqa: E402

from posepipe_step import OUT, PARAMS, check, fail, normalise as normalise_image  # noqa: E402


def allow_checkpoint_metadata() -> None:
    """torch >= 2.6 loads with weights_only=True and mmengine 0.10.7 does not override it;
    MMPose 0.x checkpoints keep numpy scalars in their metadata (open-mmlab/mmengine#1655).
    Allow exactly those numpy types instead of turning the protection off."""
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32", "bool")]
    torch.serialization.add_safe_globals([np.core.multiarray.scalar, np.dtype, *dtypes])


def load_config() -> Config:
    """The recipe's MMPose 1.x config from the installed package, its registries' scope set up."""
    cfg = Config.fromfile(str(Path(mmpose.__file__).parent / ".mim" / PARAMS["mmpose"]["config_1x"]))
    init_default_scope(cfg.get("default_scope", "mmpose"))
    return cfg


def pose_meta(cfg: Config) -> dict:
    """The dataset meta the config's test set uses (keypoint names, flips, skeleton, sigmas, dataset name)."""
    dataset = cfg.test_dataloader.dataset
    return parse_pose_metainfo(dataset.get("metainfo") or DATASETS.get(dataset.type).METAINFO)


def build_model() -> tuple[Config, torch.nn.Module, int]:
    """Config.fromfile -> init_default_scope -> MODELS.build, as mmpose.apis.init_model does
    (mmpose.apis itself imports torchvision, which has no working CPU build for torch 2.13)."""
    cfg = load_config()
    if "init_cfg" in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None  # no pretrained download
    cfg.model.train_cfg = None
    model = MODELS.build(mmcv_ops_stub.own_scope(cfg.model))
    allow_checkpoint_metadata()
    ckpt = torch.load("/in/checkpoint", map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt)
    renamed = OrderedDict((k.removeprefix("module."), v) for k, v in state.items())
    renamed._metadata = getattr(state, "_metadata", None)  # the 0.x -> 1.x hooks read the version
    # MMPose 1.x heads rename 0.x keys (keypoint_head.* -> head.*) in load_state_dict pre-hooks.
    model.load_state_dict(renamed, strict=True)
    return cfg, revert_sync_batchnorm(model).eval(), len(renamed)  # SyncBN -> BN, as the seeds do


class TensorMode(torch.nn.Module):
    """The seeds' ``model.forward = model.forward_dummy``: raw head outputs, no decoding."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x, None, mode="tensor")
        return tuple(out) if isinstance(out, (list, tuple)) else out


def as_list(out) -> list[np.ndarray]:
    return [t.detach().numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]


def synthetic_photo(height: int, width: int) -> np.ndarray:
    """A deterministic image with edges, gradients and blobs (HWC, RGB, uint8): unlike
    N(0,1) noise it has the value range and structure real normalised pixels have."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=-1)
    rng = np.random.default_rng(0)
    for _ in range(12):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(4, min(height, width) / 4)
        mask = (y - cy) ** 2 + (x - cx) ** 2 < r**2
        img[mask] = rng.uniform(0, 255, size=3)
    return img.clip(0, 255).astype(np.uint8)


def normalise(img: np.ndarray, batch: int) -> torch.Tensor:
    return torch.from_numpy(normalise_image(img)).repeat(batch, 1, 1, 1)


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def check_shapes(got: list[np.ndarray], where: str) -> None:
    want = [tuple(o["shape"]) for o in PARAMS["outputs"]]
    have = [tuple(a.shape) for a in got]
    if have != want:
        fail(f"{where} output shapes {have} differ from the recipe's {want}")


def export_onnx(wrapped: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    if PARAMS["simplify"] != "none":
        fail(f"export.simplify {PARAMS['simplify']!r} is not installed in this image; use 'none'")
    torch.onnx.export(
        wrapped, (x,), str(path), dynamo=False, opset_version=PARAMS["opset"], do_constant_folding=True,
        input_names=[PARAMS["input"]["name"]], output_names=[o["name"] for o in PARAMS["outputs"]],
    )
    onnx.checker.check_model(str(path), full_check=True)


def decoding(codec: dict) -> dict:
    """How this head's raw outputs become keypoints in input pixels, stated plainly per head type."""
    outputs = PARAMS["outputs"]
    _, _, h, w = PARAMS["input"]["shape"]
    task = PARAMS["task"]
    if task == "topdown_simcc":
        return {"method": "simcc: per keypoint, arg-max bin of x and of y, divided by split_ratio",
                "x_output": outputs[0]["name"], "y_output": outputs[1]["name"],
                "split_ratio": codec.get("simcc_split_ratio"), "input_size": [w, h], "sigma": codec.get("sigma")}
    if task == "topdown_regression":
        return {"method": "regression: (x, y) in 0..1 of the input, times its width and height",
                "output": outputs[0]["name"], "input_size": [w, h]}
    heatmaps = outputs[0]["shape"]
    found = {"method": "heatmap: per keypoint, arg-max of its channel, times input_size / heatmap_size",
             "output": outputs[0]["name"], "input_size": [w, h], "heatmap_size": [heatmaps[3], heatmaps[2]],
             "sigma": codec.get("sigma"), "keypoint_channels": heatmaps[1]}
    if task == "bottomup_associative_embedding":  # heatmaps then tags; keypoints grouped by tag distance
        found.update(method="associative embedding: heatmap peaks per keypoint, grouped into people by tag value",
                     tag_output=outputs[1]["name"] if len(outputs) > 1 else outputs[0]["name"],
                     tag_channels=outputs[1]["shape"][1] if len(outputs) > 1 else heatmaps[1] // 2)
    return found


def decode_metadata(cfg: Config) -> dict:
    """What a board app needs to turn raw outputs into keypoints without MMPose."""
    meta = pose_meta(cfg)
    codec = cfg.get("codec") or {}
    codec = json.loads(json.dumps(codec.to_dict() if hasattr(codec, "to_dict") else codec, default=str))
    return {
        "task": PARAMS["task"],
        "input": PARAMS["input"],
        "outputs": PARAMS["outputs"],
        "normalization": PARAMS["normalization"],
        "codec": codec,
        "decode": decoding(codec[0] if isinstance(codec, list) else codec),
        "keypoints": [meta["keypoint_id2name"][i] for i in range(meta["num_keypoints"])],
        "flip_indices": list(map(int, meta["flip_indices"])),
        "skeleton": [[int(a), int(b)] for a, b in meta.get("skeleton_links", [])],  # keypoint index pairs to draw
        "sigmas": [float(s) for s in meta.get("sigmas", [])],
        "dataset": meta.get("dataset_name"),
    }


def main() -> None:
    cfg, model, n_keys = build_model()
    wrapped = TensorMode(model).eval()
    shape = PARAMS["input"]["shape"]
    seeded = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    inputs = {"seeded": seeded, "image": normalise(synthetic_photo(shape[2], shape[3]), shape[0])}
    with torch.no_grad():
        reference = {k: as_list(wrapped(x)) for k, x in inputs.items()}
    check_shapes(reference["seeded"], "PyTorch")
    diffs: dict[str, dict[str, float]] = {}
    if "torchscript" in PARAMS["formats"]:
        with torch.no_grad():
            traced = torch.jit.trace(wrapped, inputs["seeded"], check_trace=False)
        traced.save(str(OUT / "model.pt"))
        reloaded = torch.jit.load(str(OUT / "model.pt")).eval()
        with torch.no_grad():
            diffs["torchscript"] = {k: max_diff(reference[k], as_list(reloaded(x))) for k, x in inputs.items()}
    if "onnx" in PARAMS["formats"]:
        path = OUT / "model.onnx"
        export_onnx(wrapped, inputs["seeded"], path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
        if names != ([PARAMS["input"]["name"]], [o["name"] for o in PARAMS["outputs"]]):
            fail(f"ONNX names {names} are not the recipe's")
        runs = {k: session.run(None, {PARAMS["input"]["name"]: x.numpy()}) for k, x in inputs.items()}
        check_shapes(runs["seeded"], "ONNX Runtime")
        diffs["onnxruntime"] = {k: max_diff(reference[k], runs[k]) for k in inputs}
    worst = max((d for per in diffs.values() for d in per.values()), default=0.0)
    record = {
        "formats": PARAMS["formats"],
        "config_1x": PARAMS["mmpose"]["config_1x"],
        "exporter": "torch.jit.trace; torch.onnx.export(dynamo=False)",
        "opset": PARAMS["opset"],
        "simplify": PARAMS["simplify"],
        "versions": {"torch": torch.__version__, "mmpose": mmpose.__version__, "mmengine": mmengine.__version__,
                     "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "checkpoint_tensors": n_keys,
        "parameters": sum(p.numel() for p in model.parameters()),
        "output_shapes": [list(a.shape) for a in reference["seeded"]],
        "seeded_output_stats": [{"mean": float(a.mean()), "std": float(a.std())} for a in reference["seeded"]],
        "max_abs_diff": diffs,
        "tolerance": PARAMS["tolerance"],
        "checks": [check("torchscript and onnx runtime vs pytorch", worst <= PARAMS["tolerance"], max_abs_diff=worst,
                         tolerance=PARAMS["tolerance"])],
    }
    (OUT / "export.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    (OUT / "decode.json").write_text(json.dumps(decode_metadata(cfg), indent=1, sort_keys=True) + "\n")
    print(json.dumps({"max_abs_diff": diffs}), flush=True)
    if worst > PARAMS["tolerance"]:
        fail(f"exports differ from PyTorch by {worst:.3g} > tolerance {PARAMS['tolerance']:g}: {diffs}")


if __name__ == "__main__":
    main()
