"""query / label import on the command line: usage errors in one line (exit 2), the shipped YAML,
and a new labeled version changing only the stages that read the labeled set."""

import json

import pytest

from activessf.active.config import QueryConfig
from activessf.cli import main
from activessf.config import build_config
from tests.conftest import PROJECT_ROOT


def test_shipped_query_yaml_is_the_dataclass_default():
    assert build_config(QueryConfig, PROJECT_ROOT / "configs" / "query.yaml", section="query") == QueryConfig()


def test_query_usage_errors(tmp_path, capsys):
    assert main(["query", "--run", str(tmp_path / "nope"), "--budget", "5", "--output", str(tmp_path / "q")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["query", "--run", str(tmp_path), "--budget", "0", "--output", str(tmp_path / "q")]) == 2
    assert "--budget must be >= 1" in capsys.readouterr().err
    assert main(["query", "--run", str(tmp_path), "--budget", "3", "--output", str(tmp_path / "q"),
                 "--set", "rare_boost=-1"]) == 2
    assert "query.rare_boost" in capsys.readouterr().err
    # A run without a pool: named, before any model is touched.
    assert main(["query", "--run", str(tmp_path), "--budget", "3", "--output", str(tmp_path / "q")]) == 2
    assert "no regions.parquet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["query", "--run", str(tmp_path), "--budget", "3", "--output", str(tmp_path / "q"), "--strategy", "bald"])


def test_label_import_errors_are_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "active").mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"classes": ["BA"], "method": "m"}))
    (run / "active" / "queried.csv").write_text("region_id,pool_crop,crop_path\nq1,,\n")
    labels = tmp_path / "a.csv"
    labels.write_text("region_id,label\nq1,XX\nq9,BA\n")
    code = main(["label", "import", "--run", str(run), "--labels", str(labels), "--output", str(tmp_path / "v")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "'XX'" in err and "never queried: 'q9'" in err
    assert not (tmp_path / "v").exists()
    with pytest.raises(SystemExit):
        main(["label", "export", "--run", str(run)])


def test_new_labeled_version_keeps_the_pool_stages(tmp_path):
    """Pointing pipeline.labeled at a new version changes the labeled stages' keys, not the pool's."""
    from activessf.pipeline.plan import build_plan
    from activessf.pipeline.run import StateLog, stages

    def keys(labeled):
        plan = build_plan(None, [f"pipeline.output={tmp_path / 'run'}", f"pipeline.labeled={labeled}"])
        return {st.name: st.key for st in stages(plan, StateLog(str(tmp_path / "run")))}

    old, new = keys(str(tmp_path / "v0")), keys(str(tmp_path / "v1" / "labeled.csv"))
    assert old["regions_pool"] == new["regions_pool"]
    assert old["regions_labeled"] != new["regions_labeled"]
