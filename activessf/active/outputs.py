"""What a query hands to the people labeling: the ranked table, a contact sheet, Label Studio files.

- ``queries.csv``: one row per proposed cell in query order (region_id, source_path, x, y, w, h,
  crop_path, predicted, score, strategy, rank);
- ``crops/<region_id>.png``: a copy of each proposed crop, so the folder stands alone;
- ``queries.png``: the crops in query order, captioned with rank and predicted class;
- ``labelstudio_tasks.json``: one task per crop (image URL, region id), the model's prediction
  as a pre-annotation; ``labelstudio_config.xml``: single choice over the class names plus
  "not a target cell".
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from typing import Sequence
from xml.sax.saxutils import quoteattr

from activessf.active import NOT_A_CELL
from activessf.io.atomic import atomic_write_bytes, atomic_write_text

QUERY_COLUMNS = ("rank", "region_id", "source_path", "x", "y", "w", "h", "crop_path", "predicted", "score", "strategy")
# Label Studio serves local files under this URL when LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED is
# true; ``?d=`` is relative to LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (set it to the query folder).
LOCAL_FILES = "/data/local-files/?d="
FROM_NAME, TO_NAME = "label", "image"


def copy_crops(out: str, rows: list[dict]) -> None:
    """Copy each row's ``pool_crop`` to ``out/crops/<region_id><ext>`` and set ``crop_path`` to the copy."""
    os.makedirs(os.path.join(out, "crops"), exist_ok=True)
    for row in rows:
        ext = os.path.splitext(row["pool_crop"])[1] or ".png"
        dst = os.path.join(out, "crops", f"{row['region_id']}{ext}")
        shutil.copyfile(row["pool_crop"], dst)
        row["crop_path"] = os.path.abspath(dst)


def queries_csv(out: str, rows: list[dict]) -> str:
    """Write ``queries.csv`` (``QUERY_COLUMNS``) and return its path."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=QUERY_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path = os.path.join(out, "queries.csv")
    atomic_write_text(path, buf.getvalue())
    return path


def contact_sheet(out: str, rows: list[dict], cols: int, tile: int = 112) -> str | None:
    """``queries.png``: the proposed crops in query order, captioned ``rank predicted``."""
    from activessf.io.decode import decode_image
    from activessf.regions.crops import encode_image, tile_images

    images, captions = [], []
    for row in rows:
        with open(row["crop_path"], "rb") as fh:
            decoded = decode_image(fh.read(), 1)
        if decoded.image is not None:
            images.append(decoded.image)
            captions.append(f"{row['rank']} {row['predicted']}")
    if not images:
        return None
    path = os.path.join(out, "queries.png")
    atomic_write_bytes(path, encode_image(tile_images(images, captions, tile, cols), "png"))
    return path


def labeling_config(classes: Sequence[str]) -> str:
    """Label Studio labeling config: the crop and one single choice (the classes, then not-a-cell)."""
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in [*classes, NOT_A_CELL])
    return (f'<View>\n  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
            f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true" required="true">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def labelstudio_tasks(out: str, rows: list[dict], model_version: str) -> list[dict]:
    """One Label Studio task per row: the crop (relative to ``out``), its region id, the prediction."""
    tasks = []
    for row in rows:
        rel = os.path.relpath(row["crop_path"], out)
        result = [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                   "value": {"choices": [row["predicted"]]}}]
        tasks.append({"data": {"image": LOCAL_FILES + rel, "region_id": row["region_id"], "rank": row["rank"]},
                      "predictions": [{"model_version": model_version, "score": float(row["confidence"]),
                                       "result": result}]})
    return tasks


def write_outputs(out: str, rows: list[dict], classes: Sequence[str], model_version: str, cols: int) -> dict:
    """Every file of a query folder; ``rows`` in query order (``copy_crops`` fills ``crop_path``)."""
    copy_crops(out, rows)
    paths = {"csv": queries_csv(out, rows), "sheet": contact_sheet(out, rows, cols)}
    paths["tasks"] = os.path.join(out, "labelstudio_tasks.json")
    atomic_write_text(paths["tasks"], json.dumps(labelstudio_tasks(out, rows, model_version), indent=1))
    paths["config"] = os.path.join(out, "labelstudio_config.xml")
    atomic_write_text(paths["config"], labeling_config(classes))
    return paths
