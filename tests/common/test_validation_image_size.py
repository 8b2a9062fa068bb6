"""``read_image_size``: the header-only check of large training sets."""

import io

import numpy as np
import pytest
from PIL import Image

from d2common.data.validation import BadSampleError, read_image_checked, read_image_size


def _png(path, h, w):
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)
    return str(path)


def test_size_from_header_with_exif_rotation(tmp_path):
    assert read_image_size(_png(tmp_path / "a.png", 20, 30)) == (20, 30)
    # A camera JPEG stored landscape with EXIF orientation 6 (rotate 90) is displayed portrait,
    # as read_image_checked decodes it.
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(buf, "JPEG", exif=exif.tobytes())
    (tmp_path / "r.jpg").write_bytes(buf.getvalue())
    path = str(tmp_path / "r.jpg")
    assert read_image_size(path) == (30, 20) == read_image_checked(path, "RGB").shape[:2]


def test_header_faults_name_the_file(tmp_path):
    with pytest.raises(BadSampleError, match="file not found"):
        read_image_size(str(tmp_path / "missing.png"))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadSampleError, match="empty file"):
        read_image_size(str(tmp_path / "empty.png"))
    (tmp_path / "text.png").write_bytes(b"not an image at all" * 4)
    with pytest.raises(BadSampleError, match="not a readable image") as info:
        read_image_size(str(tmp_path / "text.png"))
    assert info.value.path == str(tmp_path / "text.png")
    with pytest.raises(BadSampleError, match="8x40 is too small \\(needs 16x16\\)"):
        read_image_size(_png(tmp_path / "tiny.png", 8, 40), min_size=(16, 16))


def test_truncated_file_passes_the_header_but_not_the_decode(tmp_path):
    path = _png(tmp_path / "t.png", 64, 64)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    assert read_image_size(path) == (64, 64)
    with pytest.raises(BadSampleError, match="truncated or corrupt"):
        read_image_checked(path)
