"""Structural checks of the container files (no Docker engine runs here; CI lints them too)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.conftest import REPO

DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile*"))
SECRET = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD)", re.IGNORECASE)


def instructions(path):
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))
    return parser, [(i["instruction"], i["value"]) for i in parser.structure]


def test_there_is_a_cuda_and_a_cpu_image():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.cpu"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_structure(path):
    parser, steps = instructions(path)
    tag = parser.baseimage.partition(":")[2]
    assert tag and tag != "latest" and re.search(r"\d", tag), (
        f"base image not pinned: {parser.baseimage}"
    )
    users = [v for k, v in steps if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "must end as a non-root user"
    copies = [v for k, v in steps if k == "COPY"]
    runs = [v for k, v in steps if k == "RUN"]
    lock_copy = next(
        i for i, (k, v) in enumerate(steps) if k == "COPY" and "requirements.lock" in v
    )
    code_copy = next(
        i for i, (k, v) in enumerate(steps) if k == "COPY" and v.split()[-2:][0] == "."
    )
    lock_install = next(
        i for i, (k, v) in enumerate(steps) if k == "RUN" and "-r /tmp/requirements.lock" in v
    )
    assert lock_copy < lock_install < code_copy, (
        "dependencies from the lock must be installed before the code"
    )
    assert any("safe.directory /work/repo" in r for r in runs)
    assert parser.envs.get("DVC_NO_ANALYTICS") == "1"
    for key, value in {**parser.envs, **parser.args}.items():
        assert not SECRET.search(key), (
            f"secret-looking variable baked into the image: {key}={value}"
        )
    assert len(copies) == 2


def test_compose_reserves_the_gpu_and_mounts_repo_and_caches():
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    lab = compose["services"]["lab"]
    devices = lab["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for service in compose["services"].values():
        assert {"..:/work/repo", "dvc-cache:/dvc-cache", "hf-cache:/hf-cache"} <= set(
            service["volumes"]
        )
    assert all("=" not in e for e in lab["environment"]), (
        "credentials are passed through, never set here"
    )


HADOLINT = shutil.which(
    "hadolint", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (make install brings it)")
def test_hadolint_is_clean():
    subprocess.run([HADOLINT, *map(str, DOCKERFILES)], check=True)
