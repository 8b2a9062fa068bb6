"""Zero-shot COCO -> LIS evaluation: LIS registration from DATASETS.LOWLIGHT_NL.LIS_ROOT, the
coco80_to_lis8 class mapping, mapped COCO AP against pycocotools, and an --eval-only run.

No LIS data is needed: a tiny LIS-layout folder is drawn from the toy renderer (dark images:
its low-light renderings, normal images: the clean ones) with LIS's file names and classes.
"""

import json
import math
import re

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, Instances
from PIL import Image
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from d2common.checks import ConfigDataMismatch
from d2common.engine import trainer_class
from d2common.testing import plugin_cfg
from lowlight_nl.class_mapping import COCO80_TO_LIS8, get_class_mapping, map_instances
from lowlight_nl.data.checks import check_lowlight_nl_dataset
from lowlight_nl.data.datasets import register_lis_root
from lowlight_nl.data.toy import render_toy_image
from lowlight_nl.engine import LowLightTrainer
from lowlight_nl.evaluation import ClassMappedCOCOEvaluator

LIS_NAMES = ["bicycle", "car", "motorbike", "bus", "bottle", "chair", "diningtable", "tvmonitor"]
# Written out by hand from COCO's class list (contiguous index: name) and LIS's file ids above.
COCO_INDEX = {"person": 0, "bicycle": 1, "car": 2, "motorcycle": 3, "bus": 5, "bottle": 39,
              "chair": 56, "dining table": 60, "tv": 62}  # fmt: skip
COCO_INDEX_TO_LIS_ID = {1: 1, 2: 2, 3: 3, 5: 4, 39: 5, 56: 6, 60: 7, 62: 8}
LIS_TO_COCO_NAME = {"bicycle": "bicycle", "car": "car", "motorbike": "motorcycle", "bus": "bus",
                    "bottle": "bottle", "chair": "chair", "diningtable": "dining table",
                    "tvmonitor": "tv"}  # fmt: skip
SCENE_CLASSES = ["car", "tvmonitor", "diningtable", "bicycle", "chair", "bottle", "motorbike"]
NUM_SCENES = 3


def _polygons(mask):
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def make_lis_root(root):
    """LIS layout: RGB-dark/JPEGImages/<2k+2>.JPG, RGB-normal/JPEGImages/<2k+1>.png, and the
    test JSONs (dark: lis_coco_JPG_test+1.json, normal: lis_coco_png_test.json). Returns
    {dark image id: [(LIS class name, HxW uint8 mask), ...]}."""
    dark_dir, normal_dir = root / "RGB-dark" / "JPEGImages", root / "RGB-normal" / "JPEGImages"
    for d in (dark_dir, normal_dir, root / "annotations"):
        d.mkdir(parents=True)
    categories = [
        {"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(LIS_NAMES)
    ]
    files = {"dark": ([], []), "normal": ([], [])}
    truth, ann_id, c = {}, 1, 0
    for k in range(NUM_SCENES):
        dark, clean, instances = render_toy_image(0, "val", k)
        normal = (clean * 255).round().astype(np.uint8)
        h, w = dark.shape[:2]
        ids = {"dark": 2 * k + 2, "normal": 2 * k + 1}
        cv2.imwrite(str(dark_dir / f"{ids['dark']}.JPG"), dark[:, :, ::-1])
        cv2.imwrite(str(normal_dir / f"{ids['normal']}.png"), normal[:, :, ::-1])
        truth[ids["dark"]] = []
        for inst in instances:
            name = SCENE_CLASSES[c % len(SCENE_CLASSES)]
            c += 1
            mask = inst["mask"]
            ys, xs = np.nonzero(mask)
            bbox = [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]
            truth[ids["dark"]].append((name, mask))
            for kind in ("dark", "normal"):
                files[kind][1].append(
                    {"id": ann_id, "image_id": ids[kind], "category_id": LIS_NAMES.index(name) + 1,
                     "bbox": bbox, "area": float(mask.sum()), "iscrowd": 0,
                     "segmentation": _polygons(mask)}
                )  # fmt: skip
                ann_id += 1
        for kind, ext in (("dark", "JPG"), ("normal", "png")):
            files[kind][0].append(
                {"id": ids[kind], "file_name": f"{ids[kind]}.{ext}", "height": h, "width": w}
            )
    for kind, name in (("dark", "lis_coco_JPG_test+1.json"), ("normal", "lis_coco_png_test.json")):
        images, annotations = files[kind]
        data = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / name).write_text(json.dumps(data))
    return truth


@pytest.fixture
def lis_root(tmp_path):
    root = tmp_path / "LIS"
    truth = make_lis_root(root)
    assert register_lis_root(str(root))[:2] == ["lis_dark_train", "lis_dark_test"]
    return root, truth


def test_lis_root_registration_and_bad_input(lis_root, tmp_path):
    root, _ = lis_root
    dark = DatasetCatalog.get("lis_dark_test")
    assert sorted(r["image_id"] for r in dark) == [2, 4, 6]
    assert all(r["file_name"].startswith(str(root / "RGB-dark" / "JPEGImages")) for r in dark)
    assert MetadataCatalog.get("lis_dark_test").thing_classes == LIS_NAMES
    normal = DatasetCatalog.get("lis_normal_test")
    assert sorted(r["file_name"].rsplit("/", 1)[1] for r in normal) == ["1.png", "3.png", "5.png"]
    assert register_lis_root(str(root))  # the same root again: nothing changes
    assert len(DatasetCatalog.get("lis_dark_test")) == NUM_SCENES

    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        register_lis_root(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=re.escape("lis_coco_JPG_train+1.json")):
        DatasetCatalog.get("lis_dark_train")  # not in the fixture
    (root / "RGB-dark" / "JPEGImages" / "4.JPG").unlink()
    with pytest.raises(FileNotFoundError, match=r"4\.JPG: file not found.*none may be left out"):
        DatasetCatalog.get("lis_dark_test")
    (root / "annotations" / "lis_coco_png_test.json").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("lis_coco_png_test.json")):
        DatasetCatalog.get("lis_normal_test")


def test_coco80_to_lis8_mapping_by_hand():
    index_map = get_class_mapping("coco80_to_lis8").index_map(LIS_NAMES)
    assert index_map == {1: 0, 2: 1, 3: 2, 5: 3, 39: 4, 56: 5, 60: 6, 62: 7}
    shuffled = ["tvmonitor", "car", "bus", "bicycle", "diningtable", "bottle", "chair", "motorbike"]
    assert COCO80_TO_LIS8.index_map(shuffled)[62] == 0  # by name, not by position

    # car, tv, dining table, person (dropped), car
    inst = Instances((50, 60))
    inst.pred_classes = torch.tensor([2, 62, 60, 0, 2])
    inst.scores = torch.tensor([0.9, 0.8, 0.7, 0.99, 0.3])
    inst.pred_boxes = Boxes(torch.arange(20, dtype=torch.float32).view(5, 4))
    out = map_instances(inst, index_map)
    assert out.pred_classes.tolist() == [1, 7, 6, 1]  # LIS: car, tvmonitor, diningtable, car
    assert torch.equal(out.scores, torch.tensor([0.9, 0.8, 0.7, 0.3]))
    assert torch.equal(out.pred_boxes.tensor, inst.pred_boxes.tensor[[0, 1, 2, 4]])
    assert len(map_instances(inst[[3]], index_map)) == 0

    with pytest.raises(ValueError, match=r"nothing maps to \['person'\]"):
        COCO80_TO_LIS8.index_map(LIS_NAMES + ["person"])
    with pytest.raises(ValueError, match=r"not in the dataset \['tvmonitor'\]"):
        COCO80_TO_LIS8.index_map(LIS_NAMES[:-1])
    with pytest.raises(KeyError, match="coco80_to_voc"):
        get_class_mapping("coco80_to_voc")


def _predictions(truth, image_shape):
    """80-class predictions for the fixture: each object found with a shifted box and mask
    under its COCO class, except the last object of image 6 (a miss); plus a 'person' on every
    first object (must be dropped) and a 'bus' on every second object (a false positive)."""
    rng = np.random.default_rng(0)
    per_image = {}
    for image_id, objects in truth.items():
        rows = []
        for j, (name, mask) in enumerate(objects):
            if image_id == 6 and j == len(objects) - 1:
                continue
            shifted = np.roll(mask, 1, axis=1).astype(bool)
            ys, xs = np.nonzero(shifted)
            box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            rows.append((COCO_INDEX[LIS_TO_COCO_NAME[name]], rng.uniform(0.3, 0.9), box, shifted))
            if j == 0:
                rows.append((COCO_INDEX["person"], 0.95, box, shifted))
            if j == 1:
                rows.append((COCO_INDEX["bus"], 0.85, box, shifted))
        inst = Instances(image_shape)
        inst.pred_classes = torch.tensor([r[0] for r in rows], dtype=torch.long)
        inst.scores = torch.tensor([r[1] for r in rows], dtype=torch.float32)
        inst.pred_boxes = Boxes(torch.tensor([r[2] for r in rows], dtype=torch.float32))
        inst.pred_masks = torch.from_numpy(np.stack([r[3] for r in rows]))
        per_image[image_id] = (rows, inst)
    return per_image


def _pycocotools_ap(json_file, detections, iou_type):
    gt = COCO(json_file)
    coco_eval = COCOeval(gt, gt.loadRes(detections), iou_type)
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return [s * 100 if s >= 0 else float("nan") for s in coco_eval.stats[:6]]


def test_mapped_ap_equals_pycocotools_on_hand_mapped_predictions(lis_root, tmp_path):
    root, truth = lis_root
    records = DatasetCatalog.get("lis_dark_test")
    shape = (records[0]["height"], records[0]["width"])
    per_image = _predictions(truth, shape)
    evaluator = ClassMappedCOCOEvaluator("lis_dark_test", "coco80_to_lis8", str(tmp_path / "ev"))
    evaluator.reset()
    for image_id, (_, inst) in per_image.items():
        evaluator.process([{"image_id": image_id}], [{"instances": inst}])
    results = evaluator.evaluate()
    assert dict(results["records"]) == {"evaluated": 3.0, "candidates": 3.0, "excluded": 0.0}

    # The reference: the same predictions mapped by hand, person dropped, scored by pycocotools.
    boxes, segms = [], []
    for image_id, (rows, _) in per_image.items():
        for coco_index, score, (x0, y0, x1, y1), mask in rows:
            if coco_index not in COCO_INDEX_TO_LIS_ID:
                continue
            common = {"image_id": image_id, "category_id": COCO_INDEX_TO_LIS_ID[coco_index],
                      "score": float(score)}  # fmt: skip
            boxes.append({**common, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})
            rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            segms.append({**common, "segmentation": rle})
    json_file = str(root / "annotations" / "lis_coco_JPG_test+1.json")
    keys = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
    for iou_type, detections in (("bbox", boxes), ("segm", segms)):
        expected = _pycocotools_ap(json_file, detections, iou_type)
        got = [results[iou_type][k] for k in keys]
        np.testing.assert_allclose(got, expected, atol=1e-4, equal_nan=True, err_msg=iou_type)
    assert 0 < results["segm"]["AP"] < 100  # the miss and the false positives count
    # Without the mapping the person predictions would have to land somewhere: they don't.
    written = json.loads((tmp_path / "ev" / "coco_instances_results.json").read_text())
    assert len(written) == len(boxes) and {d["category_id"] for d in written} <= set(range(1, 9))


TINY = [
    "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "",
    "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "100", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
    "TEST.DETECTIONS_PER_IMAGE", "20", "DATALOADER.NUM_WORKERS", "0",
]  # fmt: skip


def test_eval_only_run_on_lis_fixture_reports_records(lis_root, tmp_path):
    root, _ = lis_root
    cfg = plugin_cfg(
        "configs/LowLightNL/maskrcnn_R50_FPN_pretrained_lis_dark.yaml",
        TINY + ["DATASETS.LOWLIGHT_NL.LIS_ROOT", str(root), "OUTPUT_DIR", str(tmp_path)],
    )
    assert (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST) == (400, 600)
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 80
    trainer_cls = trainer_class(cfg)
    assert trainer_cls is LowLightTrainer
    torch.manual_seed(0)
    model = trainer_cls.build_model(cfg)  # registers LIS_ROOT
    # The random head's logits are large and favour a few arbitrary classes: shrink them and
    # tilt the head towards person, car, dining table and tv, so that classes that are kept
    # and classes that are dropped are both predicted.
    with torch.no_grad():
        cls_score = model.roi_heads.box_predictor.cls_score
        cls_score.weight.mul_(1e-4)
        cls_score.bias[[0, 2, 60, 62]] += 2.0
    raw = []
    model.register_forward_hook(
        lambda m, i, out: raw.extend(c for o in out for c in o["instances"].pred_classes.tolist())
    )
    results = trainer_cls.test(cfg, model)
    assert dict(results["records"]) == {"evaluated": 3.0, "candidates": 3.0, "excluded": 0.0}
    assert {f"AP-{n}" for n in LIS_NAMES} <= set(results["segm"])
    assert all(math.isfinite(results[t]["AP"]) for t in ("bbox", "segm"))
    out = tmp_path / "inference" / "lis_dark_test"
    written = json.loads((out / "coco_instances_results.json").read_text())
    kept = [c for c in raw if c in COCO_INDEX_TO_LIS_ID]
    assert len(raw) > len(kept)  # the random model predicted other classes: dropped
    assert sorted(d["category_id"] for d in written) == sorted(
        COCO_INDEX_TO_LIS_ID[c] for c in kept
    )
    assert json.loads((out / "evaluation_records.json").read_text())["evaluated"] == 3


def test_lis_test_resize_is_nearest_and_fits_600x400(lis_root):
    root, _ = lis_root
    record = DatasetCatalog.get("lis_dark_test")[0]
    with Image.open(record["file_name"]) as im:
        source = np.asarray(im.convert("RGB"))
    cfg = plugin_cfg("configs/LowLightNL/maskrcnn_R50_FPN_pretrained_lis_dark.yaml")
    out = LowLightTrainer.build_dataset_mapper(cfg, False)(dict(record))["image"].numpy()
    h, w = source.shape[:2]  # 160 x 192: short side to 400, long side 480 <= 600
    assert out.shape == (3, 400, round(w * 400 / h))
    for c in range(3):  # nearest: every output value is an input value of that channel
        assert np.isin(out[c], source[:, :, 2 - c]).all()  # the model reads BGR
    cfg.defrost()
    cfg.TEST.LOWLIGHT_NL.RESIZE_INTERP = "bilinear"
    out = LowLightTrainer.build_dataset_mapper(cfg, False)(dict(record))["image"].numpy()
    assert not all(np.isin(out[c], source[:, :, 2 - c]).all() for c in range(3))


def test_class_mapping_config_checks(lis_root, tmp_path):
    DatasetCatalog.get("lis_dark_test")
    config = "configs/LowLightNL/maskrcnn_R50_FPN_pretrained_lis_dark.yaml"
    opts = ["MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path)]
    check_lowlight_nl_dataset(plugin_cfg(config, opts), "lis_dark_test")  # 80 classes: mapped
    eight = plugin_cfg(config, opts + ["MODEL.ROI_HEADS.NUM_CLASSES", "8"])
    with pytest.raises(ConfigDataMismatch, match="maps a model of 80 classes"):
        check_lowlight_nl_dataset(eight, "lis_dark_test")
    unmapped = plugin_cfg(config, opts + ["TEST.LOWLIGHT_NL.CLASS_MAPPING", ""])
    with pytest.raises(ConfigDataMismatch, match="has 8 classes"):
        check_lowlight_nl_dataset(unmapped, "lis_dark_test")
    plain = plugin_cfg(config, opts + ["TEST.EVALUATOR", "COCOEvaluator"])
    with pytest.raises(ValueError, match="set TEST.EVALUATOR LowLightNLCOCOEvaluator"):
        LowLightTrainer.build_evaluator(plain, "lis_dark_test")
