"""Which inputs are whole slides (read tile by tile) rather than images (decoded whole)."""

from __future__ import annotations

# Formats that only ever hold slides (OpenSlide's vendor formats). A .tif/.tiff may be either.
SLIDE_EXTENSIONS = (".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".vmu", ".svslide")
TIFF_EXTENSIONS = (".tif", ".tiff")


def is_slide(path: str, max_pixels: int) -> bool:
    """True when ``path`` is to be tiled: a slide format, or a TIFF that is tiled or too large.

    A tiled TIFF is what slide scanners and converters write (pyramidal or not); a striped TIFF
    of more than ``max_pixels`` would be rejected by the image decoder, so it is tiled as well.
    Only the TIFF header is read. A TIFF whose header cannot be read stays an image, so the
    decoder rejects it with its own reason.

    Args:
        path: Local path or object-storage URI.
        max_pixels: The region stage's ``max_pixels``.
    """
    lower = str(path).lower()
    if lower.endswith(SLIDE_EXTENSIONS):
        return True
    if not lower.endswith(TIFF_EXTENSIONS):
        return False
    import tifffile

    from activessf.io import fs as afs

    try:
        fs, inner = afs.resolve(path)
        with fs.open_input_file(inner) as fh, tifffile.TiffFile(fh) as tif:
            page = tif.pages.first
            return bool(page.is_tiled) or int(page.imagewidth) * int(page.imagelength) > max_pixels
    except Exception:  # not a TIFF after all, or a corrupt one: the image decoder says why
        return False

