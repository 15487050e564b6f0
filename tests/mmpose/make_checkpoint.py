"""Runs inside the mmpose image: writes a random-weight checkpoint in MMPose 0.x or 1.x form.

usage: make_checkpoint.py CONFIG_1X SEED BATCH,C,H,W [0x|1x]
/out/checkpoint.pth, 0x (the default): state dict under 0.x key names (keypoint_head.*, the old
final_layer.N layout for heads with extra conv layers), no state-dict version,
numpy scalars in its metadata, as mmcv 1.x runners saved them. 1x: the model's own state dict
(head.*, with its version metadata) and mmengine-style metadata, as the MMPose 1.x zoo has them.
/out/reference.json: per-output mean and std of the model on the export's seeded input,
so a test can tell that the export loaded these weights.
"""

import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "/opt/posepipe")
import mmcv_ops_stub  # noqa: E402

mmcv_ops_stub.install()
import mmpose  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpose.registry import MODELS  # noqa: E402

config, seed, shape = sys.argv[1], int(sys.argv[2]), [int(v) for v in sys.argv[3].split(",")]
form = sys.argv[4] if len(sys.argv) > 4 else "0x"
cfg = Config.fromfile(str(Path(mmpose.__file__).parent / ".mim" / config))
cfg.model.backbone.init_cfg = None
cfg.model.train_cfg = None
init_default_scope("mmpose")
torch.manual_seed(seed)
model = MODELS.build(mmcv_ops_stub.own_scope(cfg.model)).eval()
for m in model.modules():
    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
        m.running_mean.uniform_(-0.2, 0.2)
        m.running_var.uniform_(0.5, 1.5)

extra = getattr(model.head, "conv_layers", None)
n_extra = len(extra) if isinstance(extra, torch.nn.Sequential) else 0
old = OrderedDict()
for key, value in model.state_dict().items():
    if key.startswith("data_preprocessor."):
        continue
    if key.startswith("head."):
        rest = key[len("head."):]
        if n_extra and rest.startswith("conv_layers."):
            rest = "final_layer." + rest[len("conv_layers."):]
        elif n_extra and rest.startswith("final_layer."):
            rest = f"final_layer.{n_extra}." + rest[len("final_layer."):]
        key = "keypoint_head." + rest
    old[key] = value
if form == "1x":
    new = model.state_dict()  # keeps _metadata: the module versions 1.x checkpoints carry
    for key in [k for k in new if k.startswith("data_preprocessor.")]:
        del new[key]
    torch.save({"meta": {"mmpose_version": mmpose.__version__, "epoch": 420}, "state_dict": new}, "/out/checkpoint.pth")
else:
    meta = {"mmpose_version": "0.28.1", "epoch": np.int64(210), "hook_msgs": {"best_score": np.float64(0.81)}}
    torch.save({"meta": meta, "state_dict": old}, "/out/checkpoint.pth")

x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    out = model(x, None, mode="tensor")
outs = out if isinstance(out, (list, tuple)) else [out]
stats = [{"mean": float(t.mean()), "std": float(t.std(correction=0))} for t in outs]  # numpy-style std
Path("/out/reference.json").write_text(json.dumps(stats))
print("checkpoint with", len(old), "tensors")
