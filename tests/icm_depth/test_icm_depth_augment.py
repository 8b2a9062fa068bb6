"""ICMDepth training augmentation: warps of depth and instance ids, photometric changes."""

import cv2
import numpy as np
import pytest

from d2common.testing import plugin_cfg
from icm_depth.data.augment import GeometricAugmentation, PhotometricAugmentation, warp_sample
from icm_depth.data.mapper import ICMDepthDatasetMapper


def _scene(h=12, w=16, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = rng.uniform(2, 40, (h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.2] = 0
    ids = np.zeros((h, w), np.int32)
    ids[2:6, 3:9], ids[7:11, 8:15] = 1, 2
    return image, depth, ids


def test_integer_translation_shifts_depth_and_ids_and_invalidates_the_border():
    image, depth, ids = _scene()
    matrix = np.float32([[1, 0, 3], [0, 1, -2]])  # output(x, y) = input(x - 3, y + 2)
    img2, d2, i2 = warp_sample(image, depth, ids, matrix, zoom=1.0)
    np.testing.assert_array_equal(d2[:-2, 3:], depth[2:, :-3])
    np.testing.assert_array_equal(i2[:-2, 3:], ids[2:, :-3])
    np.testing.assert_array_equal(img2[:-2, 3:], image[2:, :-3])
    assert (d2[:, :3] == 0).all() and (d2[-2:] == 0).all() and (i2[:, :3] == 0).all()


def test_rotation_and_zoom_sample_nearest_values_and_divide_depth_by_the_zoom():
    image, depth, ids = _scene(seed=1)
    aug = GeometricAugmentation(prob=1.0, rotation=10, scale=(1.3, 1.3), translation=0.1)
    _, d2, i2 = aug(image, depth, ids, np.random.default_rng(0))
    assert set(np.unique(i2)) <= {0, 1, 2}  # never a blend of two ids
    values = set(np.round(depth[depth > 0] / 1.3, 4))
    assert set(np.round(d2[d2 > 0], 4)) <= values  # nearest samples, scaled by 1 / zoom
    # Zoomed out and turned: pixels whose source lies outside the frame are invalid, id 0.
    matrix = cv2.getRotationMatrix2D((7.5, 5.5), 20, 0.7)
    _, d4, i4 = warp_sample(image, depth, ids, matrix, zoom=0.7)
    inverse = cv2.invertAffineTransform(matrix)
    ys, xs = np.mgrid[0:12, 0:16]
    src = inverse @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    outside = ((src[0] < -0.5) | (src[0] > 15.5) | (src[1] < -0.5) | (src[1] > 11.5)).reshape(
        12, 16
    )
    assert outside.sum() > 20
    assert (d4[outside] == 0).all() and (i4[outside] == 0).all()
    keep = GeometricAugmentation(
        prob=1.0, rotation=0, scale=(1.3, 1.3), translation=0, scale_depth=False
    )
    _, d3, _ = keep(image, depth, ids, np.random.default_rng(0))
    assert set(np.round(d3[d3 > 0], 4)) <= set(np.round(depth[depth > 0], 4))


def test_quarter_turn_matches_rot90():
    _, depth, ids = _scene(h=9, w=9, seed=2)
    image = np.zeros((9, 9, 3), np.uint8)
    matrix = cv2.getRotationMatrix2D((4.0, 4.0), 90, 1.0)  # counter-clockwise
    _, d2, i2 = warp_sample(image, depth, ids, matrix, zoom=1.0)
    np.testing.assert_array_equal(i2, np.rot90(ids))
    np.testing.assert_array_equal(d2, np.rot90(depth))


def test_photometric_changes_against_their_formulas():
    image, _, _ = _scene(seed=3)
    only = dict(brightness=0, contrast=0, saturation=0, gamma=0, hue=0, sharpness=0)
    bright = PhotometricAugmentation(prob=1.0, **{**only, "brightness": 0.3})
    f = np.random.default_rng(5)
    f.random()
    factor = f.uniform(0.7, 1.3)
    want = np.rint(np.clip(image.astype(np.float32) * factor, 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(bright(image, np.random.default_rng(5)), want)
    gamma = PhotometricAugmentation(prob=1.0, **{**only, "gamma": 0.2})
    f = np.random.default_rng(6)
    f.random()
    g = f.uniform(0.8, 1.2)
    want = np.rint(255 * (image.astype(np.float32) / 255) ** g).astype(np.uint8)
    np.testing.assert_allclose(gamma(image, np.random.default_rng(6)), want, atol=1)
    # Grey images keep their colour under saturation and hue changes.
    grey = np.repeat(image[:, :, :1], 3, axis=2)
    colour = PhotometricAugmentation(prob=1.0, **{**only, "saturation": 0.5, "hue": 0.2})
    out = colour(grey, np.random.default_rng(7))
    assert np.abs(out.astype(int) - grey.astype(int)).max() <= 1
    # BGR input is augmented as the same RGB image.
    every = PhotometricAugmentation(prob=1.0)
    rgb = every(image, np.random.default_rng(8))
    bgr = every(np.ascontiguousarray(image[:, :, ::-1]), np.random.default_rng(8), "BGR")
    np.testing.assert_array_equal(bgr, rgb[:, :, ::-1])
    assert not np.array_equal(rgb, image)


def test_mapper_augmentation_is_off_in_the_demo_and_on_in_the_paper_configs():
    demo = ICMDepthDatasetMapper(plugin_cfg("configs/ICMDepth/demo.yaml"), True)
    assert demo.geometric is None and demo.photometric is None
    paper = ICMDepthDatasetMapper(plugin_cfg("configs/ICMDepth/icm_swinL_40k_kitti.yaml"), True)
    assert paper.geometric is not None and paper.photometric is not None
    image, depth, ids = _scene(h=40, w=60, seed=4)
    np.random.seed(0)
    img2, d2, i2 = paper._augment(image, depth, ids)
    assert img2.shape == (40, 60, 3) and d2.shape == i2.shape == (40, 60)
    assert d2.dtype == np.float32 and set(np.unique(i2)) <= {0, 1, 2}
    with pytest.raises(ValueError, match="SCALE"):
        ICMDepthDatasetMapper(
            plugin_cfg(
                "configs/ICMDepth/demo.yaml", ["INPUT.ICM_DEPTH.GEOMETRIC.SCALE", "[1.2, 1.0]"]
            ),
            True,
        )
