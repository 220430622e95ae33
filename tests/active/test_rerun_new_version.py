"""`activessf run` again with `pipeline.labeled` = an imported labeled version: only the stages
whose inputs changed run again (the pool's regions and features are reused), and the selection
keeps the "not a target cell" answers out.

The data stages (regions, central crops, features, selection) run for real on Ray; the training
stages (pretraining, fine-tuning, comparison, report) are replaced by recorders: what is under
test is which stages the run's fingerprints send back to work, not what they train.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from activessf.active.manifest import write_version
from activessf.active.run_inputs import append_log, read_log
from activessf.data import SAMPLE_LABELED, SAMPLE_UNLABELED
from activessf.pipeline.plan import build_plan
from activessf.pipeline.run import run_pipeline
from tests.conftest import PROJECT_ROOT

CLASSES = ["EO", "LY", "SNE"]


def _config(root: Path) -> Path:
    """3 classes x 4 labeled cells and 12 pool images of the embedded sample; random features."""
    for cls in CLASSES:
        (root / "labeled" / cls).mkdir(parents=True)
        for src in sorted((SAMPLE_LABELED / cls).iterdir())[:4]:
            shutil.copy(src, root / "labeled" / cls / src.name)
    (root / "pool").mkdir()
    for src in sorted(SAMPLE_UNLABELED.iterdir())[:12]:
        shutil.copy(src, root / "pool" / src.name)
    cfg = yaml.safe_load((PROJECT_ROOT / "configs" / "demo.yaml").read_text())
    cfg["pipeline"].update(labeled=str(root / "labeled" / ""), unlabeled=str(root / "pool"), output=str(root / "run"),
                           arms=[cfg["pipeline"]["arms"][0]], report=True)
    cfg["pipeline"].pop("predict_holdout", None)
    cfg["features"]["source"] = "random"  # the labeled backbone has its own tests
    cfg["selection"].update(k=3)
    cfg["tracking"] = {"enabled": False}  # MLflow would read the (recorded, not run) fine-tuning's files
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _record_training(monkeypatch, calls: list[str]) -> None:
    # Summaries in the real stages' shapes (the run's final summary prints an arm's means).
    fake = {"_pretrain": {"epochs": 1}, "_finetune": {"macro_pr_auc": {"mean": 0.5, "std": 0.0}}}
    for name, summary in fake.items():
        monkeypatch.setattr(f"activessf.pipeline.run.{name}",
                            lambda plan, what, n=name, s=summary: calls.append(f"{n[1:]} {what}") or s)
    for name in ("_compare", "_report"):
        monkeypatch.setattr(f"activessf.pipeline.run.{name}", lambda plan, *a, n=name: calls.append(n[1:]) or {"ok": 1})


def _stage_lines(out: str) -> dict[str, str]:
    """Stage name -> "skipped" or "ran", from the run's console lines."""
    lines = {}
    for line in out.splitlines():
        if line.startswith("[") and "] " in line and (": complete, skipped" in line or ": done in" in line):
            name = line.split("] ", 1)[1].split(":", 1)[0]
            lines[name] = "skipped" if "complete, skipped" in line else "ran"
    return lines


def test_run_with_an_imported_version_redoes_only_what_the_labels_feed(ray_session, tmp_path, monkeypatch, capsys):
    config, calls = _config(tmp_path), []
    _record_training(monkeypatch, calls)
    run_pipeline(build_plan(str(config)))
    run = tmp_path / "run"
    # Queries as `activessf query` logs them: three pool crops; two answered with a class, one
    # "not a target cell".
    pool = pq.read_table(run / "regions_pool" / "regions.parquet").to_pylist()[:3]
    append_log(str(run), [{**r, "pool_crop": str(run / "regions_pool" / r["crop_path"]), "crop_path": ""} for r in pool])
    log = read_log(str(run))
    rows = {rid: {c: log[c][i] for c in log} for i, rid in enumerate(log["region_id"])}
    answers = {pool[0]["region_id"]: "EO", pool[1]["region_id"]: "SNE", pool[2]["region_id"]: "not a target cell"}
    version = write_version(answers, rows, str(tmp_path / "labeled" / ""), str(tmp_path / "v1"))
    assert version["rows"] == 14 and version["negatives"] == 1

    capsys.readouterr()
    calls.clear()
    run_pipeline(build_plan(str(config), [f"pipeline.labeled={version['manifest']}"]))
    stages = _stage_lines(capsys.readouterr().out)
    # The pool's side is reused: its regions and features were computed from the same images and config.
    assert stages["regions_pool"] == stages["features_pool"] == "skipped", stages
    # Everything the labeled set feeds is redone, down to the comparison.
    for name in ("regions_labeled", "labeled_crops", "features_labeled", "selection", "pretrain_selected",
                 "finetune/mae_w_selection", "compare"):
        assert stages[name] == "ran", (name, stages)
    assert calls[:2] == ["pretrain pretrain_selected", "finetune mae_w_selection"]
    crops = json.loads((run / "pipeline_state.json").read_text())["stages"]["labeled_crops"]["summary"]
    assert crops["labeled_images"] == 14  # the 12 cells and the 2 answered crops
    # The "not a target cell" crop is in the pool but the selection never keeps it.
    report = json.loads((run / "selection" / "report.json").read_text())
    assert report["negatives"]["in_pool"] == 1 and report["negatives"]["dropped"] >= 1
    sel = pq.read_table(run / "selection" / "selection.parquet").to_pydict()
    assert dict(zip(sel["id"], sel["selected"]))[pool[2]["region_id"]] is False

    # The same version again: nothing to do but the report.
    capsys.readouterr()
    calls.clear()
    run_pipeline(build_plan(str(config), [f"pipeline.labeled={version['manifest']}"]))
    again = _stage_lines(capsys.readouterr().out)
    assert {n for n, s in again.items() if s == "ran"} <= {"report"}, again
