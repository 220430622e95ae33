"""The run report: Markdown sections from the stage outputs, HTML with every image inline."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

from activessf.pipeline.report import write_report

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _run_folder(root):
    for rel in ("regions_pool/contact_sheet.png", "selection/selected_crops.png", "pretrain_selected/loss_curve.png",
                "pretrain_selected/reconstructions.png", "compare/confusion_matrices.png", "compare/per_class_pr_auc.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(PNG)
    clusters = [{"cluster": 0, "size": 5, "lb": 0.1, "ub": 0.5, "threshold": 0.3, "n_assigned": 9, "n_candidates": 4,
                 "n_selected": 4, "labeled_mix": {"EO": 3, "LY": 2}}]
    (root / "selection/report.json").write_text(json.dumps({"k": 1, "alpha": 1.0, "n_rows": 9, "n_selected": 4,
                                                            "clusters": clusters}))
    (root / "compare/compare.md").write_text("## Table II: mean ± std over folds\n\n| Method | accuracy |\n|---|---|\n"
                                             "| MAE | 0.9000 ± 0.0100 |\n")
    return {"regions_pool": {"summary": {"inputs": 10, "ok": 9, "rejected": 1, "regions": 12}, "seconds": 1.0},
            "pretrain_selected": {"summary": {"method": "mae", "source": "selection", "epochs": 2}, "seconds": 3.0}}


def test_report_has_every_section_and_inline_images(tmp_path):
    stages = _run_folder(tmp_path)
    plan = SimpleNamespace(root=str(tmp_path), path=lambda *p: str(tmp_path.joinpath(*p)))
    paths = write_report(plan, stages)
    md = open(paths["md"]).read()
    assert "| regions_pool | 10 | 9 | 1 | 12 |" in md
    assert "| 0 | 5 | 0.100 | 0.500 | 0.300 | 9 | 4 | EO 3, LY 2 |" in md
    assert "### Table II" in md and "MAE" in md and "pretrain_selected: MAE on selection, 2 epochs" in md
    assert md.count("](") == 6
    html = open(paths["html"]).read()
    sources = re.findall(r'src="([^"]+)"', html)
    assert len(sources) == 6 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<table>" in html and "0.9000 ± 0.0100" in html


def test_missing_outputs_are_named_not_fatal(tmp_path):
    plan = SimpleNamespace(root=str(tmp_path), path=lambda *p: str(tmp_path.joinpath(*p)))
    md = open(write_report(plan, {})["md"]).read()
    assert "_no selection report._" in md and "compare/confusion_matrices.png is missing" in md


HOSTILE = ["<script>alert(1)</script>", "<img src=/etc/passwd>", "![x](/etc/passwd)", "[click](javascript:alert(1))",
           "a|b & c"]


def test_labels_and_paths_from_the_data_stay_text(tmp_path):
    stages = _run_folder(tmp_path)
    rep = json.loads((tmp_path / "selection/report.json").read_text())
    rep["clusters"][0]["labeled_mix"] = {label: 1 for label in HOSTILE[:3]}
    (tmp_path / "selection/report.json").write_text(json.dumps(rep))
    rows = "".join(f"| {label} | 0.5000 ± 0.0100 |\n" for label in HOSTILE)
    (tmp_path / "compare/compare.md").write_text(f"## Table I\n\n| Class | MAE |\n|---|---|\n{rows}")
    stages["pretrain_selected"]["summary"]["source"] = HOSTILE[0]
    plan = SimpleNamespace(root=str(tmp_path), path=lambda *p: str(tmp_path.joinpath(*p)))
    html = open(write_report(plan, stages)["html"]).read()
    for raw in ("<script", "<img src=/etc", 'src="/etc/passwd"', 'href="javascript', "root:x:0"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=/etc/passwd&gt;" in html
    assert "![x](/etc/passwd)" in html  # shown as the text it is
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 6 and all(s.startswith("data:image/png;base64,") for s in sources)


def test_only_images_inside_the_run_folder_are_inlined(tmp_path):
    from activessf.pipeline.report import to_html

    root = tmp_path / "run"
    (root / "compare").mkdir(parents=True)
    (root / "compare/ok.png").write_bytes(PNG)
    (root / "compare/not_an_image.png").write_text("secret")
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG)
    (root / "compare/link.png").symlink_to(outside)
    md = "".join(f"![a]({rel})\n\n" for rel in ("compare/ok.png", "../outside.png", "/etc/passwd", "compare/link.png",
                                                "compare/not_an_image.png"))
    sources = re.findall(r'src="([^"]*)"', to_html(md, str(root)))
    assert sources[0].startswith("data:image/png;base64,") and sources[1:] == ["", "", "", ""]
