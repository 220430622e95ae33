"""Query outputs: the CSV in query order, the Label Studio config and tasks, the contact sheet."""

import csv
import json
import xml.etree.ElementTree as ET

import cv2
import numpy as np

from activessf.active import NOT_A_CELL
from activessf.active.outputs import labeling_config, write_outputs


def test_labeling_config_lists_every_class_then_not_a_cell():
    root = ET.fromstring(labeling_config(["BA", 'odd "name" & <x>']))
    assert [c.get("value") for c in root.iter("Choice")] == ["BA", 'odd "name" & <x>', NOT_A_CELL]
    assert root.find("Choices").get("toName") == root.find("Image").get("name")


def test_write_outputs(tmp_path):
    rows = []
    for r, rid in enumerate(["b", "a"], start=1):
        crop = tmp_path / f"pool_{rid}.png"
        cv2.imwrite(str(crop), np.full((30, 30, 3), 60 * r, np.uint8))
        rows.append({"rank": r, "region_id": rid, "source_path": f"/s/{rid}.jpg", "x": 1, "y": 2, "w": 3, "h": 4,
                     "pool_crop": str(crop), "predicted": "BA", "confidence": 0.6, "score": 0.9, "strategy": "default"})
    out = tmp_path / "q"
    out.mkdir()
    paths = write_outputs(str(out), rows, ["BA", "LY"], "arm", cols=10)
    with open(paths["csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert [t["region_id"] for t in table] == ["b", "a"]  # query order, not id order
    assert table[0]["crop_path"] == str(out / "crops" / "b.png") and (out / "crops" / "b.png").is_file()
    tasks = json.loads(open(paths["tasks"]).read())
    assert tasks[1]["data"] == {"image": "/data/local-files/?d=crops/a.png", "region_id": "a", "rank": 2}
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"] == "arm" and pred["score"] == 0.6
    sheet = cv2.imread(paths["sheet"])
    assert sheet.shape[1] == 2 * 112  # two crops in one row
