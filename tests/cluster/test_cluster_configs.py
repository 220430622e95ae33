"""The deployment files under cluster/ agree with the project: the pinned Ray version, the node groups,
the RayJob lifecycle, and every job module, config file and copied path they name. Pure file checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
DOCKERFILE = CLUSTER / "Dockerfile"
AWS = CLUSTER / "aws.yaml"
PYTHON_TAG = "py311"
IMAGE_WORKDIR = "/home/ray/activessf"
SHARED_MOUNT = "/mnt/shared"

YAML_FILES = sorted([*CLUSTER.rglob("*.yaml"), *CLUSTER.rglob("*.yml")])
# Files whose commands must point at real modules and configs.
REFERENCING_FILES = [*sorted(p for p in CLUSTER.rglob("*") if p.is_file()), ROOT / "jobs" / "README.md"]


def ray_pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [m.group(1) for d in deps if (m := re.fullmatch(r"ray(?:\[[^\]]*\])?==([\w.]+)", d.replace(" ", "")))]
    assert len(pins) == 1, f"expected one exact ray pin in pyproject.toml, got {deps}"
    return pins[0]


def load_docs(path: Path) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"
    assert all(isinstance(d, dict) for d in docs), f"{path}: every document must be a mapping"
    return docs


def kuberay_docs() -> list[tuple[Path, dict]]:
    return [(p, d) for p in YAML_FILES for d in load_docs(p) if str(d.get("apiVersion", "")).startswith("ray.io/")]


def cluster_specs() -> list[tuple[str, dict]]:
    """(label, RayCluster spec) for every RayCluster and every RayJob's rayClusterSpec."""
    specs = []
    for path, doc in kuberay_docs():
        name = f"{path.relative_to(ROOT)}:{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "RayCluster":
            specs.append((name, doc["spec"]))
        elif doc["kind"] == "RayJob":
            specs.append((name, doc["spec"]["rayClusterSpec"]))
    return specs


def pod_specs(spec: dict) -> list[tuple[str, dict]]:
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    return [(name, g["template"]["spec"]) for name, g in groups]


def test_expected_files_exist():
    for rel in ["aws.yaml", "kuberay/raycluster.yaml", "kuberay/rayjob.yaml", "Dockerfile", "README.md"]:
        assert (CLUSTER / rel).is_file(), f"cluster/{rel} is missing"
    assert (ROOT / ".dockerignore").is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path):
    docs = load_docs(path)
    # A Ray cluster-launcher file names its cluster; a KubeRay manifest its API and kind.
    assert all(d.get("cluster_name") or (d.get("apiVersion") and d.get("kind")) for d in docs), path


def test_kuberay_ray_version_matches_pin():
    pin = ray_pin()
    kinds = {d["kind"] for _, d in kuberay_docs()}
    assert {"RayCluster", "RayJob"} <= kinds, kinds
    specs = cluster_specs()
    assert specs
    for name, spec in specs:
        assert str(spec.get("rayVersion")) == pin, f"{name}: rayVersion {spec.get('rayVersion')!r} != pinned {pin}"


def test_dockerfile_base_image_matches_pin():
    text = DOCKERFILE.read_text()
    expected = f"{ray_pin()}-{PYTHON_TAG}-gpu"
    tags = re.findall(r"rayproject/ray:([^\s\"']+)", text)
    assert tags, "the Dockerfile names no rayproject/ray image"
    assert all(tag == expected for tag in tags), f"rayproject/ray tags {tags} != {expected}"
    first_from = next(line for line in text.splitlines() if line.strip().upper().startswith("FROM "))
    assert f"rayproject/ray:{expected}" in first_from
    # The build-time sanity check asserts the same version.
    for version in re.findall(r"ray\.__version__ == '([^']+)'", text):
        assert version == ray_pin()


def test_dockerfile_copies_existing_paths_and_installs_project():
    text = DOCKERFILE.read_text()
    copies = [line.split()[1:] for line in text.splitlines() if line.strip().upper().startswith("COPY ")]
    assert copies
    for args in copies:
        sources = [a for a in args if not a.startswith("--")][:-1]
        assert sources, args
        for src in sources:
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repo root (build context)"
    copied = {Path(s).parts[0] for args in copies for s in [a for a in args if not a.startswith("--")][:-1]}
    # pyproject's readme must be in the context for setuptools.
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("readme")
    for needed in ["pyproject.toml", "activessf", "jobs", "configs", *([readme] if readme else [])]:
        assert needed in copied, f"the Dockerfile does not copy {needed}"
    assert re.search(r"pip install [^\n]*-e \.", text), "the project is not installed editable"
    workdirs = re.findall(r"^WORKDIR\s+(\S+)", text, flags=re.M)
    assert workdirs and workdirs[-1] == IMAGE_WORKDIR


def test_dockerignore_keeps_heavy_paths_out():
    patterns = {
        line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in [".git", ".venv", "outputs", "benchmarks/out"]:
        assert required in patterns, f".dockerignore lacks {required}"
    assert {"__pycache__", "**/__pycache__"} & patterns
    assert {"*.parquet", "**/*.parquet"} & patterns
    for shipped in ["activessf", "jobs", "configs", "pyproject.toml", "README.md"]:
        assert shipped not in patterns, f".dockerignore excludes {shipped}, which the image needs"


def test_aws_node_types():
    cfg = load_docs(AWS)[0]
    assert cfg["provider"]["type"] == "aws"
    assert cfg["provider"]["region"] == "us-west-2"
    assert cfg["provider"]["cache_stopped_nodes"] is False
    assert cfg["auth"]["ssh_user"] == "ubuntu"
    assert cfg["docker"]["image"].endswith("activessf:latest")
    assert any("--shm-size" in opt for opt in cfg["docker"]["run_options"])
    assert cfg["setup_commands"] == []
    types = cfg["available_node_types"]
    assert {"head", "cpu_worker", "gpu_worker"} <= set(types), set(types)
    assert cfg["head_node_type"] == "head"
    assert "GPU" not in types["head"]["resources"]
    for name in ("cpu_worker", "gpu_worker"):
        assert types[name]["min_workers"] == 0, f"{name} must scale from zero"
        assert 0 < types[name]["max_workers"] <= cfg["max_workers"]
    assert types["cpu_worker"]["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert "InstanceMarketOptions" not in types["gpu_worker"]["node_config"], "GPU (training) nodes are on-demand"
    assert types["gpu_worker"]["max_workers"] == 4
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "ray start --head --port=6379" in head_start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head_start
    assert "--dashboard-host=0.0.0.0" in head_start
    assert "ray start --address=$RAY_HEAD_IP:6379" in " ".join(cfg["worker_start_ray_commands"])


def test_kuberay_groups_autoscale_and_share_storage():
    pvcs = {
        d["metadata"]["name"]: d for p in YAML_FILES for d in load_docs(p) if d.get("kind") == "PersistentVolumeClaim"
    }
    for name, spec in cluster_specs():
        assert spec["enableInTreeAutoscaling"] is True, name
        groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
        assert {"cpu", "gpu"} <= set(groups), f"{name}: worker groups {set(groups)}"
        for group in groups.values():
            assert group["minReplicas"] == 0 and group["maxReplicas"] > 0, f"{name}/{group['groupName']}"
        assert groups["gpu"]["maxReplicas"] == 4
        assert groups["cpu"]["maxReplicas"] == 20
        for group_name, pod in pod_specs(spec):
            claims = {v["persistentVolumeClaim"]["claimName"]: v["name"]
                      for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
            assert claims, f"{name}/{group_name} mounts no shared volume"
            for claim in claims:
                assert claim in pvcs, f"{name}/{group_name}: PVC {claim} is defined nowhere under cluster/"
                assert "ReadWriteMany" in pvcs[claim]["spec"]["accessModes"]
            for container in pod["containers"]:
                where = f"{name}/{group_name}/{container['name']}"
                mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
                assert mounts.get(SHARED_MOUNT) in claims.values(), f"{where}: shared PVC not at {SHARED_MOUNT}"
                assert "activessf" in container["image"], where
                assert container.get("workingDir") == IMAGE_WORKDIR, where
                res = container["resources"]
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(res[kind]), f"{where}: {kind} lacks cpu/memory"
                has_gpu = "nvidia.com/gpu" in res["limits"]
                assert has_gpu == (group_name == "gpu"), f"{where}: only the gpu group gets GPUs"
        gpu_pod = dict(pod_specs(spec))["gpu"]
        assert gpu_pod.get("nodeSelector") and gpu_pod.get("tolerations"), f"{name}: GPU pods need GPU nodes"


def test_rayjob_lifecycle():
    jobs = [d for _, d in kuberay_docs() if d["kind"] == "RayJob"]
    assert jobs
    for job in jobs:
        spec = job["spec"]
        assert spec["shutdownAfterJobFinishes"] is True
        assert isinstance(spec["backoffLimit"], int) and spec["backoffLimit"] >= 1
        assert isinstance(spec["ttlSecondsAfterFinished"], int)
        assert spec["submissionMode"] == "K8sJobMode"
        entry = " ".join(spec["entrypoint"].split())
        assert entry.startswith("python -m jobs.pipeline "), entry
        # KubeRay pastes the entrypoint into a shell line: shell operators would split it.
        assert not re.search(r"&&|;|\|", entry), entry
        for key in ("pipeline.output", "pretrain.train.storage_path", "finetune.train.storage_path"):
            value = re.search(rf"--set {re.escape(key)}=(\S+)", entry)
            assert value, f"the RayJob does not set {key}"
            assert value.group(1).startswith((SHARED_MOUNT + "/", "s3://")), f"{key} is not on shared storage"


def referenced(pattern: str) -> list[tuple[Path, str]]:
    found = []
    for path in REFERENCING_FILES:
        text = " ".join(path.read_text().split())  # join YAML folded / backslash-continued lines
        found += [(path, m) for m in re.findall(pattern, text)]
    return found


def test_referenced_job_modules_exist():
    refs = referenced(r"python -m (jobs(?:\.\w+)+)")
    modules = {m for _, m in refs}
    assert "jobs.pipeline" in modules, modules
    for path, module in refs:
        target = ROOT / (module.replace(".", "/") + ".py")
        assert target.is_file(), f"{path.relative_to(ROOT)} runs {module}, but {target.relative_to(ROOT)} does not exist"


def test_referenced_configs_exist():
    refs = referenced(r"--config (configs/[\w./-]+\.ya?ml)")
    assert any(c == "configs/pipeline.yaml" for _, c in refs)
    for path, config in refs:
        assert (ROOT / config).is_file(), f"{path.relative_to(ROOT)} uses --config {config}, which does not exist"


def test_referenced_runtime_env_exists():
    refs = referenced(r"--runtime-env ([\w./-]+\.ya?ml)")
    assert refs
    for path, env in refs:
        assert (ROOT / env).is_file(), f"{path.relative_to(ROOT)} uses --runtime-env {env}, which does not exist"
