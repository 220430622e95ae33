"""A label import's "not a target cell" answers keep their look-alikes out of the selection."""

import json

import numpy as np
import pyarrow.parquet as pq

from activessf.config import build_config
from activessf.selection.config import SelectionConfig
from activessf.selection.negatives import nearer_to_negatives, negatives_beside, read_negative_ids
from activessf.selection.stage import run_select
from tests.selection.test_stage import _write_features


def _negatives_csv(path, ids):
    path.write_text("region_id,image_id,source_path,x,y,w,h,crop_path\n"
                    + "".join(f"{i},img,/x.png,0,0,8,8,negatives/{i}.png\n" for i in ids))
    return str(path)


def test_rows_nearer_a_negative_than_their_prototype_and_every_labeled_crop_go(tmp_path):
    # Pool on a line: a labeled crop at x=0 (its prototype at x=0.5), a negative at x=4.
    feats = np.array([[0.2, 0], [1.5, 0], [2.6, 0], [4, 0], [9, 0]], float)
    _write_features(tmp_path / "unl", feats)
    path = str(tmp_path / "unl" / "features.parquet")
    to_proto = {f"u{i}": abs(x - 0.5) for i, x in enumerate(feats[:, 0])}
    lab = np.array([[0.0, 0.0]])
    drop, found = nearer_to_negatives(path, {"u3", "elsewhere"}, to_proto, lab, "euclidean", batch_size=2)
    # u0, u1: nearer the prototype; u2: 1.4 to the negative, 2.1 to the prototype, 2.6 to the
    # labeled crop; u3: the negative itself; u4: 5 to the negative, 8.5 to the prototype.
    assert drop == {"u2", "u3", "u4"} and found == 1  # "elsewhere" is not a pool row
    # A labeled crop nearer than the negative keeps the row (u4 is 1 from a labeled crop at 8).
    drop, _ = nearer_to_negatives(path, {"u3"}, to_proto, np.array([[0.0, 0], [8.0, 0]]), "euclidean", 2)
    assert drop == {"u2", "u3"}
    assert nearer_to_negatives(path, {"elsewhere"}, to_proto, lab, "euclidean", 2) == (set(), 0)


def test_negatives_file_is_found_beside_a_label_import_manifest(tmp_path):
    manifest = tmp_path / "labeled.csv"
    manifest.write_text("source_path,label,region_id\n")
    assert negatives_beside(str(manifest)) is None and negatives_beside(None) is None
    _negatives_csv(tmp_path / "negatives.csv", ["r1", "r2"])
    assert negatives_beside(str(manifest)) == str(tmp_path / "negatives.csv")
    assert negatives_beside(str(tmp_path)) is None  # an image folder has no negatives
    assert read_negative_ids(str(tmp_path / "negatives.csv")) == {"r1", "r2"}


def test_select_stage_skips_negatives_and_their_neighbourhood_and_reruns_on_new_answers(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0]], float)
    lab = np.concatenate([c + rng.normal(0, 0.5, (20, 2)) for c in centres])
    # Pool: 30 cells around each class, and a tight group of 10 debris crops on the edge of
    # class A (at (0, 1)); the labeler answered "not a target cell" for one of them.
    unl = np.concatenate([c + rng.normal(0, 0.5, (30, 2)) for c in centres] + [[0, 1.0] + rng.normal(0, 0.05, (10, 2))])
    _write_features(tmp_path / "lab", lab, ["A"] * 20 + ["B"] * 20, "l")
    _write_features(tmp_path / "unl", unl)
    monkeypatch.setattr("activessf.selection.stage._contact_sheet", lambda *a, **k: None)
    cfg = build_config(SelectionConfig, None, ["rule=paper", "k=2", "n_init=4", "alpha=0"])  # threshold = UB
    args = (str(tmp_path / "lab"), str(tmp_path / "unl"), str(tmp_path / "out"), cfg)
    debris = {f"u{i}" for i in range(60, 70)}
    before = run_select(*args)
    sel = pq.read_table(tmp_path / "out" / "selection.parquet").to_pydict()
    chosen = {i for i, s in zip(sel["id"], sel["selected"]) if s}
    assert len(debris & chosen) >= 8 and "negatives" not in before  # the debris looks like class A

    neg = _negatives_csv(tmp_path / "negatives.csv", ["u60"])
    after = run_select(*args, negatives=neg)  # new answers: the stage reruns (its fingerprint changed)
    assert after is not None and after["negatives"] == {"file": neg, "negatives": 1, "in_pool": 1,
                                                        "dropped": after["negatives"]["dropped"]}
    sel = pq.read_table(tmp_path / "out" / "selection.parquet").to_pydict()
    chosen_now = {i for i, s in zip(sel["id"], sel["selected"]) if s}
    assert not debris & chosen_now
    # Only the debris went: the class A and B cells selected before still are.
    assert chosen - debris == chosen_now and after["negatives"]["dropped"] == 10
    # The table keeps each row's real distance to its prototype (not the exclusion's infinity).
    assert np.isfinite(sel["distance"]).all()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["negatives"]["dropped"] == 10
    assert run_select(*args, negatives=neg) is None  # same answers: complete, skipped
