"""``activessf serve``: a model bundle behind an HTTP endpoint on Ray Serve.

``POST /`` with an image file's bytes as the body (``curl --data-binary @smear.jpg URL``) answers
JSON: the image size and every cell's box, kind, predicted class, confidence, low-confidence flag
and per-class probabilities. A bad image gets HTTP 400 with the reason; ``GET /`` describes the
model. Replicas scale with ``replicas`` and take a GPU each when ``use_gpu``.
"""

from __future__ import annotations

import asyncio
import json
import os

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from activessf.config import from_dict, to_dict
from activessf.distributed.runtime import ensure_ray
from activessf.inference.config import PredictConfig
from activessf.inference.service import BadImage, CellPredictor

APP_NAME = "activessf"


@serve.deployment(max_ongoing_requests=8)
class CellService:
    """One replica: the bundle loaded once, requests answered in a worker thread."""

    def __init__(self, folder: str, cfg: dict, use_gpu: bool) -> None:
        self.predictor = CellPredictor(folder, from_dict(PredictConfig, cfg), use_gpu)
        meta = self.predictor.clf.meta
        self.about = {"model": meta["arm"], "classes": meta["classes"], "input_size": meta["input"]["size"],
                      "cv": {k: meta["cv"][k] for k in ("accuracy", "macro_pr_auc", "macro_f1")},
                      "usage": "POST the bytes of an image file to this URL"}

    async def __call__(self, request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse(self.about)
        body = await request.body()
        try:
            # The region filter and the model are CPU-bound: keep the replica's event loop free.
            answer = await asyncio.to_thread(self.predictor.answer, body)
        except BadImage as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(answer)


def start_service(model: str, cfg: PredictConfig, host: str = "127.0.0.1", port: int = 8000,
                  replicas: int = 1, use_gpu: bool = False) -> str:
    """Deploy the bundle and return its URL (Serve keeps running until :func:`stop_service`).

    Args:
        model: Bundle folder (checked before anything starts).
        cfg: Predict config (mode, runtime, low-confidence threshold).
        host, port: Where the HTTP proxy listens.
        replicas: Replicas of the model.
        use_gpu: One GPU per replica, torch on CUDA.
    """
    from activessf.inference.bundle import read_meta

    read_meta(model)  # a bad bundle fails here, with its reason, not inside a replica
    ensure_ray()
    serve.start(http_options={"host": host, "port": port})
    options = {"num_cpus": 0 if use_gpu else cfg.threads, "num_gpus": 1 if use_gpu else 0}
    app = CellService.options(num_replicas=replicas, ray_actor_options=options).bind(
        os.path.abspath(model), to_dict(cfg), use_gpu)
    serve.run(app, name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}/"


def stop_service() -> None:
    """Remove the application and shut Serve down (its proxy and controller)."""
    serve.shutdown()


def describe(url: str, model: str) -> str:
    """A line for the terminal: where it listens and how to call it."""
    with open(os.path.join(model, "model.json"), encoding="utf-8") as fh:
        classes = json.load(fh)["classes"]
    return (f"serving {model} ({len(classes)} classes) at {url}\n"
            f"  try: curl --data-binary @image.jpg {url}\n  Ctrl-C stops it")
