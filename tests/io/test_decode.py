import cv2
import numpy as np
import pytest

from activessf.io.decode import decode_image, to_rgb8


def _png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def test_rgb_round_trip_keeps_channel_order():
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in OpenCV's BGR
    out = decode_image(_png(bgr))
    assert out.status == "ok" and out.reason == ""
    assert out.image.shape == (20, 30, 3)
    assert (out.width, out.height) == (30, 20)
    assert out.image[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize(
    "data,reason",
    [(b"", "empty file"), (None, "unreadable"), (b"hello world" * 10, "not a decodable image")],
)
def test_garbage_is_rejected_with_reason(data, reason):
    out = decode_image(data)
    assert out.status == "rejected" and reason in out.reason and out.image is None


def test_truncated_jpeg_and_png_are_rejected():
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    ok, jpg = cv2.imencode(".jpg", img)
    jpg = jpg.tobytes()
    assert decode_image(jpg).status == "ok"
    assert "truncated JPEG" in decode_image(jpg[: len(jpg) // 2]).reason
    png = _png(img)
    assert "truncated PNG" in decode_image(png[: len(png) - 20]).reason


def test_too_small_rejected_but_size_recorded():
    out = decode_image(_png(np.zeros((1, 1, 3), np.uint8)), min_side=16)
    assert out.status == "rejected" and "too small" in out.reason
    assert (out.width, out.height) == (1, 1)


def test_conversions_are_named():
    gray = np.full((20, 20), 77, np.uint8)
    out = decode_image(_png(gray))
    assert out.status == "ok" and "grayscale" in out.reason and out.image[0, 0].tolist() == [77, 77, 77]
    deep = np.full((20, 20, 3), 65535, np.uint16)
    out = decode_image(_png(deep))
    assert "16-bit" in out.reason and out.image.max() == 255
    rgba = np.zeros((20, 20, 4), np.uint8)  # fully transparent black -> white background
    out = decode_image(_png(rgba))
    assert "RGBA" in out.reason and out.image.min() == 255


def test_float_images_are_rejected():
    rgb, reason = to_rgb8(np.zeros((4, 4, 3), np.float32))
    assert rgb is None and "unsupported pixel type" in reason
