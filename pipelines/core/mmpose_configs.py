"""The one table from the seeds' MMPose 0.x config names to the MMPose 1.x configs we build.

Recipes keep the names their vendor documents use (MMPose 0.28.1); the export
image runs MMPose 1.3.2, whose configs live in the wheel under ``.mim/``. 0.x
checkpoints load into these models through MMPose's own state-dict hooks.
"""

from __future__ import annotations

from pipelines.core.errors import UsageError

CONFIG_1X: dict[str, str] = {
    "configs/hand/2d_kpt_sview_rgb_img/topdown_heatmap/coco_wholebody_hand/hrnetv2_w18_coco_wholebody_hand_256x256.py":
        "configs/hand_2d_keypoint/topdown_heatmap/coco_wholebody_hand/td-hm_hrnetv2-w18_8xb32-210e_coco-wholebody-hand-256x256.py",
    "configs/face/2d_kpt_sview_rgb_img/deeppose/wflw/res50_wflw_256x256.py":
        "configs/face_2d_keypoint/topdown_regression/wflw/td-reg_res50_8xb64-210e_wflw-256x256.py",
    "configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/litehrnet_18_coco_256x192.py":
        "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_litehrnet-18_8xb64-210e_coco-256x192.py",
    "configs/body/2d_kpt_sview_rgb_img/associative_embedding/coco/hrnet_w32_coco_512x512.py":
        "configs/body_2d_keypoint/associative_embedding/coco/ae_hrnet-w32_8xb24-300e_coco-512x512.py",
    "configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/hrnet_w32_coco_256x192.py":
        "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py",
}


def config_1x(config_0x: str) -> str:
    try:
        return CONFIG_1X[config_0x]
    except KeyError:
        raise UsageError(
            f"no MMPose 1.x config is mapped for {config_0x}; add it to pipelines/mmpose_configs.py"
        ) from None
