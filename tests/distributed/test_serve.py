"""``activessf serve`` on Ray Serve: a real HTTP client on 127.0.0.1, answers equal to ``predict``."""

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow.parquet as pq
import pytest

from activessf.stages.predict import run_predict
from activessf.distributed.serve import start_service, stop_service
from activessf.inference.config import PredictConfig
from tests.trained import CLASSES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, data: bytes) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_answers_like_predict(bundle, shared_data, tmp_path, ray_session):
    images = sorted((shared_data / "bccd" / "JPEGImages").glob("*.jpg"))[:4]
    manifest = tmp_path / "m.csv"
    manifest.write_text("source_path\n" + "\n".join(str(p) for p in images) + "\n")
    run_predict(str(manifest), str(bundle), str(tmp_path / "p"), PredictConfig(), executor="local")
    expected = pq.read_table(tmp_path / "p" / "predictions.parquet").to_pandas()

    url = start_service(str(bundle), PredictConfig(), port=_free_port())
    try:
        bodies = [p.read_bytes() for p in images]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: _post(url, bodies[i % 4]), range(50)))
        assert [code for code, _ in answers] == [200] * 50
        for path, (_, ans) in zip(images, answers[:4]):
            rows = expected[expected.source_path == str(path)]
            assert [(c["x"], c["y"], c["w"], c["h"]) for c in ans["cells"]] == list(rows[["x", "y", "w", "h"]].itertuples(index=False, name=None))
            got = np.array([[c["probabilities"][k] for k in CLASSES] for c in ans["cells"]]).reshape(-1, len(CLASSES))
            assert np.abs(got - rows[[f"p_{k}" for k in CLASSES]].to_numpy()).max() <= 1e-5
            assert [c["predicted"] for c in ans["cells"]] == rows.predicted.tolist()
        code, err = _post(url, b"\x89PNG\r\n\x1a\n truncated")
        assert code == 400 and err["error"]
        assert _post(url, b"") == (400, {"error": "empty request body: POST the image file's bytes"})
        with urllib.request.urlopen(url, timeout=30) as r:
            assert json.loads(r.read())["classes"] == list(CLASSES)
    finally:
        stop_service()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)
