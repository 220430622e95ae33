"""The JSON summary and the contact sheet."""

import json

import cv2
import numpy as np

from activessf.selection import cluster_thresholds, select, selection_contact_sheet, selection_report
from tests.selection.test_select import CANDIDATES
from tests.selection.test_thresholds import CENTRES, LABELS, MEMBERS


def test_report_counts_and_json():
    centres = np.vstack([CENTRES, [[100.0, 100.0]]])  # cluster 3 is empty
    stats = cluster_thresholds(MEMBERS, centres, LABELS, alpha=1.0)
    result = select(CANDIDATES, centres, stats.threshold, budget=2)
    rep = selection_report(stats, result, alpha=1.0, k=4)
    text = json.dumps(rep, allow_nan=False)  # plain types, no NaN
    assert json.loads(text) == rep
    assert (rep["alpha"], rep["k"], rep["n_rows"]) == (1.0, 4, 6)
    assert (rep["n_candidates"], rep["n_selected"]) == (3, 2)
    c0, c1, c2, c3 = rep["clusters"]
    assert c0 == {
        "cluster": 0, "size": 4, "lb": 1.0, "ub": 4.0, "threshold": 1.0,
        "n_assigned": 2, "n_candidates": 1, "n_selected": 1,
    }
    assert (c1["threshold"], c1["n_assigned"], c1["n_candidates"]) == (2.0, 2, 1)
    assert c2["size"] == 1 and c2["lb"] == c2["ub"] == 2.0
    assert c3["size"] == 0 and c3["lb"] is None and c3["threshold"] is None
    assert sum(c["n_selected"] for c in rep["clusters"]) == 2


def test_contact_sheet_one_labelled_row_per_cluster(tmp_path, shared_data):
    files = sorted((shared_data / "pbc11" / "labeled" / "EO").glob("*.jpg"))[:3]
    crops = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    one, three = tmp_path / "one.png", tmp_path / "three.png"
    selection_contact_sheet({0: crops}, one, per_row=4, thumb=32)
    selection_contact_sheet({0: crops, 2: crops[:1], 5: [np.zeros((10, 20, 3), np.uint8)]}, three, per_row=4)
    a, b = cv2.imread(str(one)), cv2.imread(str(three))
    assert a.shape[2] == b.shape[2] == 3
    assert b.shape[0] > 2 * a.shape[0]  # rows stack vertically
    # Real crops are not blank: the sheet holds their colours.
    assert a.std() > 10
    empty = tmp_path / "empty.png"
    selection_contact_sheet({}, empty)
    assert cv2.imread(str(empty)) is not None
