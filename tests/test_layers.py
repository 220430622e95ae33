"""The layers show in the imports: Ray only in ``distributed``; ``distributed`` below the stages.

Read from the source like ``tests/test_import_graph.py`` (module- and function-level imports).
"""

from __future__ import annotations

import ast

from tests.test_import_graph import both, import_graph, modules

UPPER = ("activessf.stages", "activessf.pipeline", "activessf.cli")


def _package(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_distributed_does_not_import_stages_pipeline_or_cli():
    edges = both(import_graph(modules()))
    wrong = {(a, b) for a, targets in edges.items() if _package(a) == "activessf.distributed"
             for b in targets if _package(b) in UPPER}
    assert wrong == set()


def test_only_distributed_imports_ray():
    importers = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "ray" or n.startswith("ray.") for n in names):
                importers.add(_package(name))
    assert importers == {"activessf.distributed"}, importers


def test_stage_entry_points_live_in_stages():
    mods = modules()
    assert {f"activessf.stages.{s}" for s in ("regions", "features", "feature_backbone", "pretrain", "folds",
                                             "finetune", "predict", "query")} <= set(mods)
    entry = {name: [n.name for n in ast.parse(path.read_text()).body
                    if isinstance(n, ast.FunctionDef) and n.name.startswith("run_")]
             for name, path in mods.items() if name.startswith("activessf.distributed.")}
    # The Ray layer has no stage entry point; a sweep's Tune run is ``tune_sweep``.
    assert {name: fns for name, fns in entry.items() if fns} == {}
