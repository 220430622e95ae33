"""label import: answers read from CSV and Label Studio JSON, every error named, nothing written on error,
a new version that load_inputs reads as a labeled set, negatives apart, the base never edited."""

import csv
import json

import cv2
import numpy as np
import pytest

from activessf.active import NOT_A_CELL
from activessf.active.answers import read_answers
from activessf.active.label_import import import_labels
from activessf.active.manifest import read_negatives
from activessf.active.run_inputs import append_log, labeled_region_ids
from activessf.io.sources import InputError, load_inputs, readable

CLASSES = ["BA", "LY"]


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((20, 20, 3), value, np.uint8))
    return path


@pytest.fixture
def run(tmp_path):
    """A run folder with classes, a labeled ImageFolder base and three queried pool cells q1..q3."""
    root = tmp_path / "run"
    root.mkdir()
    (root / "metrics.json").write_text(json.dumps({"classes": CLASSES, "method": "m"}))
    base = tmp_path / "base"
    for c in CLASSES:
        _png(base / c / f"{c}_0.png", 10)
    rows = [{"region_id": f"q{i}", "image_id": f"img{i}", "source_path": f"/slides/s{i}.jpg", "x": i, "y": 0, "w": 5,
             "h": 5, "pool_crop": str(_png(tmp_path / "pool" / f"q{i}.png", 40 * i)), "crop_path": "",
             "strategy": "default", "rank": i} for i in (1, 2, 3)]
    append_log(str(root), rows)
    return root, base


def _csv(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["region_id", "label"])
        w.writerows(rows)
    return str(path)


def test_csv_import_writes_a_new_version(run, tmp_path):
    root, base = run
    labels = _csv(tmp_path / "a.csv", [["q1", "BA"], ["q2", NOT_A_CELL], ["q1", "BA"]])
    s = import_labels(str(root), labels, str(tmp_path / "v1"), base=str(base))
    assert s["added"] == {"BA": 1} and s["negatives"] == 1 and s["rows"] == 3 and s["base_rows"] == 2
    table = readable(load_inputs(str(tmp_path / "v1" / "labeled.csv"), labeled=True))
    assert sorted(table["label"].to_pylist()) == ["BA", "BA", "LY"]
    assert labeled_region_ids(str(tmp_path / "v1" / "labeled.csv")) == {"q1"}
    neg = read_negatives(str(tmp_path / "v1"))
    assert [n["region_id"] for n in neg] == ["q2"] and neg[0]["source_path"] == "/slides/s2.jpg"
    assert sorted(p.name for p in base.rglob("*.png")) == ["BA_0.png", "LY_0.png"]  # base untouched
    # The next version extends this one: keeps q1's id and q2 as a negative, adds q3.
    s2 = import_labels(str(root), _csv(tmp_path / "b.csv", [["q3", "LY"]]), str(tmp_path / "v2"),
                       base=str(tmp_path / "v1" / "labeled.csv"))
    assert s2["rows"] == 4 and s2["negatives"] == 1 and s2["added"] == {"LY": 1}
    assert labeled_region_ids(str(tmp_path / "v2" / "labeled.csv")) == {"q1", "q3"}


def _studio(path, tasks):
    path.write_text(json.dumps(tasks))
    return str(path)


def _task(rid, *choices, cancelled=False):
    anns = [{"id": n, "was_cancelled": cancelled, "result": [
        {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [c]}}]}
        for n, c in enumerate(choices)]
    return {"data": {"image": "/data/local-files/?d=crops/x.png", "region_id": rid}, "annotations": anns}


def test_label_studio_export_and_min_format(run, tmp_path):
    root, base = run
    full = _studio(tmp_path / "ls.json", [_task("q1", "LY"), _task("q2"), _task("q3", "BA", cancelled=True)])
    assert [(a.region_id, a.label) for a in read_answers(full)] == [("q1", "LY")]
    mini = _studio(tmp_path / "min.json", [{"region_id": "q3", "label": {"choices": ["BA"]}}, {"region_id": "q2"}])
    assert [(a.region_id, a.label) for a in read_answers(mini)] == [("q3", "BA")]
    s = import_labels(str(root), full, str(tmp_path / "v"), base=str(base))
    assert s["added"] == {"LY": 1}


@pytest.mark.parametrize("rows, message", [
    ([["q1", "BAS"]], "unknown label.*'BAS'.*q1"),
    ([["zz", "BA"]], "never queried: 'zz'"),
    ([["q1", "BA"], ["q1", "LY"]], r"answers disagree: q1 \['BA', 'LY'\]"),
])
def test_errors_name_the_problem_and_write_nothing(run, tmp_path, rows, message):
    root, base = run
    out = tmp_path / "v"
    with pytest.raises(InputError, match=message):
        import_labels(str(root), _csv(tmp_path / "bad.csv", rows), str(out), base=str(base))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_disagreeing_label_studio_annotations_fail(run, tmp_path):
    root, base = run
    bad = _studio(tmp_path / "ls.json", [_task("q1", "BA", NOT_A_CELL)])
    with pytest.raises(InputError, match="disagree: q1"):
        import_labels(str(root), bad, str(tmp_path / "v"), base=str(base))


def test_existing_output_is_refused(run, tmp_path):
    root, base = run
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "labeled.csv").write_text("old")
    with pytest.raises(InputError, match="not empty"):
        import_labels(str(root), _csv(tmp_path / "a.csv", [["q1", "BA"]]), str(tmp_path / "v"), base=str(base))
    assert (tmp_path / "v" / "labeled.csv").read_text() == "old"
