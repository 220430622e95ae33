"""The select stage end to end on synthetic feature tables with known structure."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activessf.config import build_config
from activessf.features.stage import features_schema
from activessf.selection.config import SelectionConfig
from activessf.selection.select import select
from activessf.selection.stage import run_select
from activessf.selection.prototypes import fit_prototypes
from activessf.selection.thresholds import cluster_thresholds


def _write_features(path, feats, labels=None, prefix="u"):
    schema = features_schema(feats.shape[1], {"backbone": "synthetic"})
    n = len(feats)
    table = pa.table(
        {
            "id": [f"{prefix}{i}" for i in range(n)],
            "path": [f"/nowhere/{prefix}{i}.png" for i in range(n)],
            "label": labels if labels is not None else [None] * n,
            "feature": pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1).astype(np.float32)), feats.shape[1]),
        },
        schema=schema,
    )
    path.mkdir(parents=True)
    pq.write_table(table, path / "features.parquet")


def test_select_stage_outputs_and_streaming_equals_in_memory(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    sizes = [30, 10, 3]  # a dominant, a medium and a rare class
    lab = np.concatenate([c + rng.normal(0, 0.5, (n, 2)) for c, n in zip(centres, sizes)])
    labels = [name for name, n in zip("ABC", sizes) for _ in range(n)]
    unl = np.concatenate([centres[rng.integers(0, 3, 200)] + rng.normal(0, 0.8, (200, 2)), rng.normal(5, 0.3, (20, 2))])
    _write_features(tmp_path / "lab", lab, labels, "l")
    _write_features(tmp_path / "unl", unl)
    # No crops on disk for synthetic rows: the contact sheet is tested elsewhere.
    monkeypatch.setattr("activessf.selection.stage._contact_sheet", lambda *a, **k: None)
    cfg = build_config(SelectionConfig, None, ["rule=paper", "k=3", "batch_size=16", "n_init=4"])
    report = run_select(str(tmp_path / "lab"), str(tmp_path / "unl"), str(tmp_path / "out"), cfg)
    sel = pq.read_table(tmp_path / "out" / "selection.parquet")
    assert sel.num_rows == 220 and report["n_rows"] == 220
    # Streaming in chunks of 16 equals the in-memory reference.
    c, labs = fit_prototypes(lab.astype(np.float32), 3, 4, 0)
    stats = cluster_thresholds(lab.astype(np.float32), c, labs, 1.0)
    want = select(unl.astype(np.float32), c, stats.threshold)
    # selection.parquet comes sorted by id (whatever order the feature rows were written in).
    by_id = np.argsort(np.array([f"u{i}" for i in range(220)]))
    assert sel["id"].to_pylist() == sorted(f"u{i}" for i in range(220))
    assert sel["selected"].to_pylist() == want.selected[by_id].tolist()
    # The 20 points half-way between classes are never selected; the report matches the table.
    chosen = {i for i, s in zip(sel["id"].to_pylist(), sel["selected"].to_pylist()) if s}
    assert not chosen & {f"u{i}" for i in range(200, 220)}
    assert report["n_selected"] == sum(sel["selected"].to_pylist()) > 0
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk["k"] == 3 and on_disk["alpha"] == 1.0 and len(on_disk["clusters"]) == 3
    rare = min(on_disk["clusters"], key=lambda r: r["size"])
    assert rare["labeled_mix"] == {"C": 3}
    # Eq. 8 on the reported numbers: the largest cluster sits at LB, the rarest nearly at UB.
    n_max = max(r["size"] for r in on_disk["clusters"])
    for r in on_disk["clusters"]:
        want_thr = r["lb"] + (r["ub"] - r["lb"]) * (1 - r["size"] / n_max)
        assert abs(r["threshold"] - want_thr) < 1e-9
    largest = max(on_disk["clusters"], key=lambda r: r["size"])
    assert largest["threshold"] == largest["lb"] and rare["threshold"] > rare["lb"]
    assert np.load(tmp_path / "out" / "prototypes.npy").shape == (3, 2)
    assert run_select(str(tmp_path / "lab"), str(tmp_path / "unl"), str(tmp_path / "out"), cfg) is None


def test_selection_does_not_depend_on_feature_row_order(tmp_path, monkeypatch):
    # The features stage writes rows in Ray Data's completion order, which varies between runs;
    # K-means seeding sees row order, so the stage must fit on rows in a fixed (id) order.
    rng = np.random.default_rng(1)
    lab, unl = rng.normal(size=(60, 4)), rng.normal(size=(80, 4))
    labels = [f"c{i % 6}" for i in range(60)]
    perm = rng.permutation(60)
    _write_features(tmp_path / "lab_a", lab, labels, "l")
    _write_features(tmp_path / "unl", unl)
    # Same rows (same ids), shuffled: write, then reorder the file.
    _write_features(tmp_path / "lab_b", lab, labels, "l")
    shuffled = pq.read_table(tmp_path / "lab_b" / "features.parquet").take(pa.array(perm))
    pq.write_table(shuffled, tmp_path / "lab_b" / "features.parquet")
    monkeypatch.setattr("activessf.selection.stage._contact_sheet", lambda *a, **k: None)
    cfg = build_config(SelectionConfig, None, ["rule=paper", "k=6", "n_init=1"])
    runs = [run_select(str(tmp_path / f"lab_{v}"), str(tmp_path / "unl"), str(tmp_path / f"out_{v}"), cfg) for v in "ab"]
    assert runs[0]["clusters"] == runs[1]["clusters"]
    sel = [pq.read_table(tmp_path / f"out_{v}" / "selection.parquet")["selected"].to_pylist() for v in "ab"]
    assert sel[0] == sel[1]
    np.testing.assert_array_equal(np.load(tmp_path / "out_a" / "prototypes.npy"), np.load(tmp_path / "out_b" / "prototypes.npy"))


def test_select_refuses_features_of_different_backbones(tmp_path):
    import pytest

    from activessf.io.sources import InputError
    from activessf.selection.stage import check_same_embedding

    rng = np.random.default_rng(0)
    _write_features(tmp_path / "lab", rng.normal(size=(6, 4)), list("AABBCC"), "l")
    unl = rng.normal(size=(10, 4))
    # Same dimension, another backbone: distances between the two spaces would mean nothing.
    schema = features_schema(4, {"backbone": "resnet34", "weights": None, "seed": 0})
    table = pa.table({"id": [f"u{i}" for i in range(10)], "path": ["p"] * 10, "label": [None] * 10,
                      "feature": pa.FixedSizeListArray.from_arrays(pa.array(unl.reshape(-1).astype(np.float32)), 4)},
                     schema=schema)
    (tmp_path / "unl").mkdir()
    pq.write_table(table, tmp_path / "unl" / "features.parquet")
    cfg = build_config(SelectionConfig, None, ["k=2", "n_init=1"])
    with pytest.raises(InputError) as err:
        run_select(str(tmp_path / "lab"), str(tmp_path / "unl"), str(tmp_path / "out"), cfg)
    msg = str(err.value)
    assert "backbone=synthetic" in msg and "backbone=resnet34" in msg and "lab" in msg and "unl" in msg
    assert not (tmp_path / "out" / "selection.parquet").exists()
    # A seeded random backbone: another seed is another feature space; with weights, the file decides.
    same = {"backbone": "resnet18", "weights": None, "seed": 0, "data_config": {}}
    check_same_embedding(same, dict(same), "a", "b")
    with pytest.raises(InputError, match="seed=0.*seed=1"):
        check_same_embedding(same, same | {"seed": 1}, "a", "b")
    w = same | {"weights": "w.pt", "weights_stamp": "s1"}
    check_same_embedding(w, w | {"seed": 7}, "a", "b")
    with pytest.raises(InputError, match="weights_stamp"):
        check_same_embedding(w, w | {"weights_stamp": "s2"}, "a", "b")
