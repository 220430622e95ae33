"""The job working dir: code and the embedded sample travel, user data, outputs and git do not."""

import yaml
from ray._private.thirdparty.pathspec import PathSpec  # the matcher ray job submit applies

from tests.conftest import PROJECT_ROOT


def test_excludes_keep_the_package_and_drop_data_and_outputs():
    env = yaml.safe_load((PROJECT_ROOT / "jobs" / "runtime_env.yaml").read_text())
    spec = PathSpec.from_lines("gitwildmatch", env["excludes"])
    for kept in ("activessf/data/sample/pbc11/labeled/BA/a.jpg", "activessf/pipeline/run.py", "jobs/pipeline.py",
                 "configs/demo.yaml"):
        assert not spec.match_file(kept), kept
    for dropped in (".git/HEAD", "data/slides/a.tif", "outputs/demo/report.html", "runs/r1/x", ".venv/bin/python",
                    "activessf/__pycache__/x.pyc", "benchmarks/out/a.json", "outputs/x/features.parquet"):
        assert spec.match_file(dropped), dropped
