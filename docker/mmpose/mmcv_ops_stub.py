"""Stand-in for ``mmcv.ops`` in an mmcv-lite install, and MMPose's own modules where a config asks mmdet's.

``import mmpose.models`` imports every head, and a few import compiled ops at
module level (e.g. ``MultiScaleDeformableAttention`` in EDPose). None of the
seed models uses them, and building mmcv with ops takes about 54 minutes on
two cores, so these names are placeholders that raise if anything tries to
build one: a model that needs compiled ops fails loudly, never silently.
"""

import sys
import types

import torch.nn as nn

NAMES = (
    "MultiScaleDeformableAttention", "DeformConv2d", "ModulatedDeformConv2d", "DeformConv2dPack",
    "ModulatedDeformConv2dPack", "RoIAlign", "nms", "batched_nms",
)


def _placeholder(name):
    class Missing(nn.Module):
        def __init__(self, *args, **kwargs):
            raise RuntimeError(f"mmcv.ops.{name} needs mmcv built with compiled ops, which this image leaves out")

    Missing.__name__ = name
    return Missing


def install():
    """Register the placeholder module unless a real mmcv.ops imports."""
    try:
        import mmcv.ops  # noqa: F401
        return False
    except Exception:
        pass
    for key in [k for k in sys.modules if k == "mmcv.ops" or k.startswith("mmcv.ops.")]:
        del sys.modules[key]
    ops = types.ModuleType("mmcv.ops")
    for name in NAMES:
        setattr(ops, name, _placeholder(name))
    sys.modules["mmcv.ops"] = ops
    import mmcv

    mmcv.ops = ops
    return True


def own_scope(cfg):
    """Build the parts a config takes from mmdet (``_scope_='mmdet'``: RTMPose's CSPNeXt backbone) from
    MMPose's own copy of the same module when MMPose has one: importing mmdet's models imports compiled
    mmcv ops at module level, which mmcv-lite leaves out. The copies share their parameter names, so
    checkpoints load strictly either way."""
    from mmpose.registry import MODELS

    if isinstance(cfg, dict):
        if cfg.get("_scope_") == "mmdet" and MODELS.get(cfg.get("type")) is not None:
            del cfg["_scope_"]
        for value in cfg.values():
            own_scope(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            own_scope(value)
    return cfg
