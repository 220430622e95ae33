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


def _png_of_zeros(width: int, height: int) -> bytes:
    """A real 8-bit grayscale PNG, compressed row by row (never the whole image in memory)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_huge_image_is_rejected_from_its_header_before_decoding():
    import tracemalloc

    from activessf.io.decode import decode_image

    data = _png_of_zeros(10000, 6000)  # 60 MP, well under 1 MB on disk
    tracemalloc.start()
    out = decode_image(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.status == "rejected" and "too large (10000x6000" in out.reason and "tiled reader" in out.reason
    assert (out.width, out.height) == (10000, 6000)
    assert peak < 20_000_000  # nothing was decoded (it would take 180 MB as RGB)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif", ".bmp", ".webp"])
def test_header_size_matches_the_decoded_size(shared_data, ext):
    from activessf.io.decode import decode_image, header_size

    real = cv2.imread(str(min((shared_data / "pbc11" / "labeled" / "LY").glob("*.jpg"))))
    ok, buf = cv2.imencode(ext, real)
    data = buf.tobytes()
    assert header_size(data) == (real.shape[1], real.shape[0])
    assert decode_image(data).status == "ok"
    small_cap = decode_image(data, max_pixels=real.shape[0] * real.shape[1] - 1)
    assert small_cap.status == "rejected" and "max_pixels" in small_cap.reason
