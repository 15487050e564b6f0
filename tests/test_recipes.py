"""The five seed recipes and the RTMPose ones, the schema, and every way a recipe can be wrong."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from pipelines.core import toolchains
from pipelines.core.errors import RecipeError
from pipelines.core.layout import REPO_ROOT
from pipelines.core.recipe import field_path, load_recipe, recipe_paths
from pipelines.core.schema import RECIPE_SCHEMA as SCHEMA_PATH, recipe_schema, render

RECIPES = REPO_ROOT / "recipes"
SEED_RECIPES = ["face_deeppose", "hand_hrnetv2", "hrnet_pose_ae", "hrnet_sophon", "litehrnet"]
ZOO_RECIPES = ["rtmpose_m_body", "rtmpose_m_face"]  # MMPose 1.x model zoo, not from a seed document


def load(name: str):
    return load_recipe(RECIPES / f"{name}.yaml")


def test_exactly_the_seed_and_zoo_recipes_exist_and_validate():
    assert [p.stem for p in recipe_paths(RECIPES)] == sorted(SEED_RECIPES + ZOO_RECIPES)
    for name in SEED_RECIPES + ZOO_RECIPES:
        r = load(name)
        assert r.name == name and len(r.digest) == 64


def test_schema_is_valid_2020_12_and_versioned():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"] == {"description": "Version of this recipe format.", "const": 1}


def test_recipes_carry_the_editor_schema_line():
    for p in recipe_paths(RECIPES):
        assert p.read_text().startswith("# yaml-language-server: $schema=../pipelines/core/schemas/recipe.schema.json\n"), p


def test_editor_schema_is_the_one_composed_from_the_toolchain_modules():
    """pipelines/core/schemas/recipe.schema.json is generated: `python -m pipelines.core.schema` rewrites it."""
    assert SCHEMA_PATH.read_text() == render(recipe_schema()), "run: python -m pipelines.core.schema"
    jsonschema.Draft202012Validator.check_schema(recipe_schema())


def test_every_toolchain_folder_has_a_module_and_back():
    folders = {p.parent.name for p in (REPO_ROOT / "docker").glob("*/toolchain.yaml")}
    assert folders == set(toolchains.registry())


def test_seed_facts_hand_hrnetv2():
    r = load("hand_hrnetv2")
    assert r.model.input.shape == (1, 3, 256, 256)
    assert r.model.outputs[0].shape == (1, 21, 64, 64)
    assert r.model.checkpoint.file_name == "hrnetv2_w18_coco_wholebody_hand_256x256-1c028db7_20210908.pth"
    drpai = r.target("drpai")
    assert drpai.output == "hrnetv2_pt"
    assert drpai.params["addr_map_start"] == 0x438E0000
    assert drpai.params["frontend"] == "torchscript"
    assert drpai.params["preprocess_runtime"]["crop"] == (80, 0, 480, 480)


def test_seed_facts_face_deeppose():
    r = load("face_deeppose")
    assert r.model.outputs[0].shape == (1, 98, 2)
    assert r.target("drpai").output == "face_deeppose_pt"
    cpu = r.target("drpai_cpu")
    assert cpu.output == "face_deeppose_cpu" and cpu.toolchain == "drpai_tvm_cpu"
    assert cpu.params["frontend"] == "torchscript" and cpu.params["product"] == "V2MA"
    assert r.model.checkpoint.sha256 == "92d0ba7f"


def test_seed_facts_sophon_fp32_int8_batch_1_and_4():
    r = load("hrnet_sophon")
    combos = {(t.params["quantize"], t.params["batch"]) for t in r.targets if t.toolchain == "sophgo_nntc" and "batch" in t.params}
    assert combos == {("fp32", 1), ("fp32", 4), ("int8", 1), ("int8", 4)}
    assert r.target("bm1684_int8_b1b4").params["combine"] == ("bm1684_int8_b1", "bm1684_int8_b4")


def test_seed_facts_vastai_and_kneron():
    ae = load("hrnet_pose_ae")
    assert ae.model.input.shape == (1, 3, 512, 512) and ae.export.opset == 11
    assert ae.target("vastai_int8").params["calibrate_mode"] == "kl_divergence"
    assert ae.target("vastai_int8").output == "hrnet_pose-int8-kl_divergence-512-vacc"
    assert ae.seed_reported["coco_ap"] == 0.6454
    lite = load("litehrnet")
    assert {t.params.get("platform") for t in lite.targets} >= {"520", "720"}
    assert lite.model.input.shape == (1, 3, 256, 192)


def test_every_recipe_has_an_open_target_and_one_normalization():
    for name in SEED_RECIPES:
        r = load(name)
        assert any(toolchains.get(t.toolchain).kind == "open" for t in r.targets), name
        assert r.model.normalization.mean == (123.675, 116.28, 103.53)
        assert r.model.normalization.std == (58.395, 57.12, 57.375)


def test_recipe_values_are_read_only():
    t = load("hand_hrnetv2").target("drpai")
    with pytest.raises(TypeError):
        t.params["addr_map_start"] = 0  # type: ignore[index]


def test_digest_ignores_comments_and_key_order(tmp_path):
    src = (RECIPES / "litehrnet.yaml").read_text()
    data = yaml.safe_load(src)
    reordered = tmp_path / "litehrnet.yaml"
    reordered.write_text("# another comment\n" + yaml.safe_dump(dict(reversed(list(data.items())))))
    assert load_recipe(reordered).digest == load("litehrnet").digest


def test_field_path_rendering():
    assert field_path(["targets", 2, "quantize"]) == "targets[2].quantize"
    assert field_path([]) == ""


SOPHON = (RECIPES / "hrnet_sophon.yaml").read_text()
HAND = (RECIPES / "hand_hrnetv2.yaml").read_text()
LITE = (RECIPES / "litehrnet.yaml").read_text()

BAD = [
    # (case, recipe stem, text, field, reason fragment)
    ("unknown key", "hrnet_sophon", SOPHON.replace("    batch: 4\n", "    batch: 4\n    quantise: int8\n", 1), "targets[1].quantise", "unknown key"),
    ("wrong type", "hrnet_sophon", SOPHON.replace("batch: 4", "batch: four", 1), "targets[1].batch", "type integer"),
    ("bad enum", "hrnet_sophon", SOPHON.replace("quantize: int8", "quantize: int4", 1), "targets[2].quantize", "one of 'fp32', 'int8'"),
    ("bad shape", "hrnet_sophon", SOPHON.replace("shape: [1, 3, 256, 192]", "shape: [1, 3, 256]", 1), "model.input.shape", "at least 4"),
    ("negative dim", "hrnet_sophon", SOPHON.replace("shape: [1, 17, 64, 48]", "shape: [1, 17, -64, 48]", 1), "model.outputs[0].shape[2]", "minimum"),
    ("unknown toolchain", "hrnet_sophon", SOPHON.replace("toolchain: sophgo_nntc", "toolchain: tensorrt", 1), "targets[0].toolchain", "must be one of"),
    ("duplicate id", "hrnet_sophon", SOPHON.replace("id: bm1684_fp32_b4", "id: bm1684_fp32_b1", 1), "targets[1].id", "duplicate target id"),
    ("duplicate output", "hrnet_sophon", SOPHON.replace("output: hrnet_fp32_4b", "output: hrnet_fp32_1b", 1), "targets[1].output", "also used by targets[0]"),
    ("output with slash", "hrnet_sophon", SOPHON.replace("output: hrnet_fp32_1b", "output: a/b", 1), "targets[0].output", "single folder name"),
    ("output with dotdot", "hrnet_sophon", SOPHON.replace("output: hrnet_fp32_1b", "output: ..", 1), "targets[0].output", "required form"),
    ("malformed hash", "hrnet_sophon", SOPHON.replace("sha256: c78dce93", "sha256: c78dce9z", 1), "model.checkpoint.sha256", "required form"),
    ("hash vs file name", "hrnet_sophon", SOPHON.replace("sha256: c78dce93", "sha256: deadbeef", 1), "model.checkpoint.sha256", "prefix in the file name"),
    ("missing field", "hrnet_sophon", SOPHON.replace("  opset: 11\n", "", 1), "export.opset", "required field is missing"),
    ("combine unknown", "hrnet_sophon", SOPHON.replace("combine: [bm1684_int8_b1, bm1684_int8_b4]", "combine: [bm1684_int8_b1, nope]"), "targets[4].combine[1]", "names no target"),
    ("name vs file", "hrnet_sophon", SOPHON.replace("name: hrnet_sophon", "name: other", 1), "name", "file name"),
    ("schema version", "hrnet_sophon", SOPHON.replace("schema_version: 1", "schema_version: 2", 1), "schema_version", "must be 1"),
    ("unpinned checkpoint", "hrnet_sophon", SOPHON.replace("sha256: c78dce93", "sha256: unpinned", 1), "model.checkpoint.sha256", "required form"),
    ("int8 without calibration", "hrnet_sophon", SOPHON[: SOPHON.index("calibration:")] + SOPHON[SOPHON.index("targets:"):], "targets[2].toolchain", "calibration block"),
    ("addr for other product", "hand_hrnetv2", HAND.replace("product: V2MA", "product: V2L"), "targets[0].addr_map_start", "expected 0x838E0000"),
    ("drpai key on wrong toolchain", "hand_hrnetv2", HAND.replace("    quantize: none\n", "    quantize: none\n    product: V2L\n", 1), "targets[1].product", "unknown key"),
    ("cpu-only on the vendor toolchain", "hand_hrnetv2", HAND.replace("mode: drpai", "mode: cpu_only"), "targets[0].mode", "drpai"),
    ("crop outside frame", "hand_hrnetv2", HAND.replace("crop: [80, 0, 480, 480]", "crop: [300, 0, 480, 480]"), "targets[0].preprocess_runtime.crop", "does not fit"),
    ("unknown 0.x config", "hrnet_sophon", SOPHON.replace("hrnet_w32_coco_256x192.py", "hrnet_w33_coco_256x192.py", 1), "model.mmpose.config", "did you mean configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/hrnet_w32_coco_256x192.py"),
    ("1.x config typo", "hrnet_sophon", SOPHON.replace("configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/hrnet_w32_coco_256x192.py", "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_8xb32-210e_coco-265x192.py", 1), "model.mmpose.config", "did you mean configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_8xb32-210e_coco-256x192.py"),
    # a check needs a limit to hold it: no default limit, so no default claim
    ("bmodel without a limit", "litehrnet", LITE.replace("    batch: 1\n    max_keypoint_error_px: 2.0\n", "    batch: 1\n", 1), "targets[2].max_keypoint_error_px", "required field is missing"),
    ("ov fp16 without max_abs_diff", "litehrnet", LITE.replace("    precision: FP16\n    max_abs_diff: 0.02\n", "    precision: FP16\n", 1), "targets[5].max_abs_diff", "required field is missing"),
    ("ov int8 without a limit", "litehrnet", LITE.replace("    preset: performance\n    max_keypoint_error_px: 2.0\n", "    preset: performance\n", 1), "targets[6].max_keypoint_error_px", "required field is missing"),
    ("unparsable url", "litehrnet", LITE.replace("url: https://download.openmmlab.com/", "url: https://[download.openmmlab.com/", 1), "model.checkpoint.url", "is not a URL: Invalid IPv6 URL"),  # found by the fuzzer
    ("rknn fp16 on an int8-only npu", "litehrnet", LITE.replace("platform: rv1106\n    quantize: INT8", "platform: rv1106\n    quantize: FP16", 1), "targets[13].quantize", "must be 'INT8', not 'FP16'"),
    ("rknn without a limit", "litehrnet", LITE.replace("platform: rk3566\n    quantize: INT8\n    max_keypoint_error_px: 2.0\n", "platform: rk3566\n    quantize: INT8\n", 1), "targets[12].max_keypoint_error_px", "required field is missing"),
    ("rknn gdq needs torch", "litehrnet", LITE.replace("platform: rk3566\n    quantize: INT8\n", "platform: rk3566\n    quantize: INT8\n    algorithm: gdq\n", 1), "targets[12].algorithm", "one of 'normal', 'mmse', 'kl_divergence'"),
    ("ov bad precision", "litehrnet", LITE.replace("precision: FP16", "precision: BF16", 1), "targets[5].precision", "one of 'FP32', 'FP16', 'INT8'"),
    # the labelled set and the preview photo are inputs like any other: fetched by hash, read as told
    ("evaluation without images", "litehrnet", LITE.replace("  images:\n    url: http://images.cocodataset.org/zips/val2017.zip\n    sha256: unpinned\n", "", 1), "evaluation.images", "required field is missing"),
    ("evaluation member leaves the archive", "litehrnet", LITE.replace("annotations_member: annotations/", "annotations_member: ../", 1), "evaluation.annotations_member", "must not contain '..'"),
    ("evaluation limit of 0", "litehrnet", LITE.replace("limit: 500", "limit: 0", 1), "evaluation.limit", "minimum"),
    ("preview box of three", "litehrnet", LITE.replace("box: [280, 44, 219, 347]", "box: [280, 44, 219]", 1), "preview.box", "at least 4"),
    ("preview photo unhashed", "litehrnet", LITE.replace("    sha256: 83981537a7baeafbeb9c8cb67b3484dc26433f574b3685d021fa537e277e4726\n", "", 1), "preview.photo.sha256", "required field is missing"),
    ("yaml syntax", "hrnet_sophon", SOPHON.replace("targets:", "targets: [", 1), "", "YAML"),
    ("empty file", "hrnet_sophon", "", "", "empty"),
    ("only comments", "hrnet_sophon", "# nothing\n", "", "no YAML document"),
    ("top-level list", "hrnet_sophon", "- a\n- b\n", "", "must be a mapping"),
    ("top-level scalar", "hrnet_sophon", "just text\n", "", "must be a mapping"),
    ("alias bomb", "hrnet_sophon", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n", "", "anchors"),
    ("duplicate key", "hrnet_sophon", SOPHON.replace("schema_version: 1", "schema_version: 1\nschema_version: 1", 1), "", "duplicate key"),
    ("python tag", "hrnet_sophon", "x: !!python/object/apply:os.system ['true']\n", "", "YAML"),
    ("non-string key", "hrnet_sophon", "1: x\n", "", "keys must be strings"),
    ("not utf-8", "hrnet_sophon", "name: \udcff", "", "UTF-8"),
]


@pytest.mark.parametrize("case,stem,text,field,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_recipe_names_field_and_reason(tmp_path, case, stem, text, field, reason):
    path = tmp_path / f"{stem}.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    problems = e.value.problems
    assert any(p.field == field and reason in p.reason for p in problems), problems
    assert str(path) in str(e.value)


def test_line_numbers_point_at_the_field(tmp_path):
    path = tmp_path / "hrnet_sophon.yaml"
    path.write_text(SOPHON.replace("quantize: int8", "quantize: int4", 1))
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    line = e.value.problems[0].line
    assert "quantize: int4" in SOPHON.replace("quantize: int8", "quantize: int4", 1).splitlines()[line - 1]


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "hrnet_sophon.yaml"
    path.write_text(SOPHON.replace("batch: 4", "batch: four", 1).replace("quantize: int8", "quantize: int4", 1))
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    assert {p.field for p in e.value.problems} == {"targets[1].batch", "targets[2].quantize"}


def test_unquoted_hex_addr_is_accepted(tmp_path):
    path = tmp_path / "hand_hrnetv2.yaml"
    path.write_text(HAND.replace('"0x438E0000"', "0x438E0000"))
    assert load_recipe(path).target("drpai").params["addr_map_start"] == 0x438E0000


def test_a_1x_config_is_named_as_it_is_in_the_mmpose_package(tmp_path):
    from pipelines.core.mmpose_configs import config_1x

    w48 = "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_8xb32-210e_coco-256x192.py"
    path = tmp_path / "hrnet_sophon.yaml"
    path.write_text(SOPHON.replace("configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/hrnet_w32_coco_256x192.py", w48, 1))
    assert config_1x(load_recipe(path).model.mmpose.config) == w48


def test_every_recipe_config_maps_to_an_mmpose_1x_config():
    from pipelines.core.mmpose_configs import config_1x

    for name in SEED_RECIPES:
        assert config_1x(load(name).model.mmpose.config).startswith("configs/")


@pytest.mark.slow
def test_mmpose_config_list_is_the_locked_wheels():
    """docker/mmpose/configs.txt, which validate checks recipes against, is made from the wheel the lock pins."""
    from pipelines.core.mmpose_configs import configs_1x_path
    from pipelines.edges.mmpose_catalog import locked_wheel, render

    from .conftest import SHARED_STORE

    assert configs_1x_path().read_text() == render(locked_wheel(SHARED_STORE / "wheels")), \
        "run `python -m pipelines.edges.mmpose_catalog` after changing docker/mmpose/requirements.lock"


def test_a_toolchain_is_vendor_in_its_module_exactly_when_its_image_folder_stands_on_a_vendor_base():
    """Said twice today (Toolchain.kind, and `base: vendor` in toolchain.yaml): they must agree."""
    for name, toolchain in toolchains.registry().items():
        spec = yaml.safe_load((REPO_ROOT / "docker" / name / "toolchain.yaml").read_text()) or {}
        assert (toolchain.kind == "vendor") == (spec.get("base") == "vendor"), name
