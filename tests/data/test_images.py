import cv2
import numpy as np
import pytest
from PIL import Image

from ymir_base.data import images
from ymir_base.data.images import image_size, read_image
from ymir_base.errors import ErrorCode, ImageFormatError


@pytest.fixture(params=["opencv", "pillow"])
def decoder(request, monkeypatch):
    """Run a test through OpenCV and again through the Pillow fallback."""
    if request.param == "pillow":
        monkeypatch.setattr(images.cv2, "imdecode", lambda *_: None)
    return request.param


def test_gray_png_becomes_three_equal_channels(tmp_path, decoder):
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), np.array([[0, 7, 255], [100, 101, 102]], np.uint8))
    img = read_image(path)
    assert img.shape == (2, 3, 3) and img.dtype == np.uint8
    assert img[0, :, 0].tolist() == [0, 7, 255]
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()


def test_rgba_png_drops_alpha_without_compositing(tmp_path, decoder):
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 2), (10, 20, 30, 0)).save(path)
    img = read_image(path)
    assert img.shape == (2, 4, 3)
    assert img[1, 3].tolist() == [10, 20, 30]


def test_16bit_gray_png_is_divided_by_257(tmp_path, decoder):
    path = tmp_path / "gray16.png"
    cv2.imwrite(str(path), np.array([[0, 257 * 100, 65535, 300]], np.uint16))
    img = read_image(path)
    assert img[0, :, 1].tolist() == [0, 100, 255, 1]  # 300 / 257 = 1.17 -> 1, not clipped to 255


def test_16bit_colour_png_keeps_channel_order(tmp_path):
    path = tmp_path / "bgr16.png"
    cv2.imwrite(str(path), np.array([[[65535, 0, 257 * 100]]], np.uint16))  # BGR on disk
    assert read_image(path)[0, 0].tolist() == [100, 0, 255]


def test_palette_png(tmp_path, decoder):
    path = tmp_path / "palette.png"
    im = Image.new("P", (3, 1))
    im.putpalette([0, 0, 0, 200, 10, 50] + [0] * 762)
    im.putpixel((1, 0), 1)
    im.save(path)
    img = read_image(path)
    assert img.shape == (1, 3, 3)
    assert img[0, 1].tolist() == [200, 10, 50] and img[0, 0].tolist() == [0, 0, 0]


def test_jpeg_is_rgb(tmp_path, decoder):
    path = tmp_path / "red.jpg"
    Image.new("RGB", (8, 8), (250, 10, 10)).save(path, quality=95)
    r, g, b = read_image(path)[4, 4].tolist()
    assert r > 230 and g < 30 and b < 30


def _jpeg(tmp_path):
    path = tmp_path / "noise.jpg"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return path


def _bad_file(tmp_path, kind):
    if kind == "missing":
        return tmp_path / "missing.jpg"
    if kind == "truncated-jpeg":
        data = _jpeg(tmp_path).read_bytes()
    elif kind == "truncated-png":
        Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
        data = (tmp_path / "full.png").read_bytes()
    else:
        data = {"empty": b"", "not-an-image": b"not an image"}[kind]
    path = tmp_path / f"{kind}.img"
    path.write_bytes(data[: len(data) // 2] if kind.startswith("truncated") else data)
    return path


@pytest.mark.parametrize("kind", ["truncated-jpeg", "truncated-png", "empty", "not-an-image", "missing"])
def test_unreadable_images_raise_with_path(tmp_path, kind):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(ImageFormatError) as err:
        read_image(path)
    assert str(path) in str(err.value)
    assert err.value.code == ErrorCode.IMAGE_FORMAT


def test_complete_jpeg_with_trailing_bytes_is_accepted(tmp_path):
    path = _jpeg(tmp_path)
    path.write_bytes(path.read_bytes() + b"appended data")
    assert read_image(path).shape == (32, 32, 3)


def test_image_size_reads_the_header(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("L", (37, 11)).save(path)
    assert image_size(path) == (37, 11)


@pytest.mark.parametrize("content", [None, b"", b"garbage"], ids=["missing", "empty", "garbage"])
def test_image_size_errors_name_the_file(tmp_path, content):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageFormatError, match=str(path)):
        image_size(path)
