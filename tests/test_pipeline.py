"""End to end on a shrunk default profile, in a copy of the repository: `dvc repro`, the
report and `make verify` (and tampering that must fail it), the S3 round trip a reviewer
makes, byte-identical reruns, and DVC's experiment queue."""

from __future__ import annotations

import configparser
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from entropy_lab.provenance import sha256_path
from tests.conftest import REPO, shrink

pytestmark = pytest.mark.slow


VENV = Path(sys.executable).parent.parent
OUTPUTS = (  # every deterministic output: byte-identical after `dvc freeze harvest` + repro -f
    "models/kjv-tiny",
    "data/models",
    "data/tasks",
    "adapters/kjv-tiny",
    "reports/train",
    "data/eval",
    "reports/eval",
    "data/ab",
    "data/ab_metrics",
    "reports/ab",
    "reports/report.md",
    "reports/metrics.json",
    "reports/headline.json",
    "reports/provenance.json",
    "reports/teaching.csv",
    "reports/figures",
)


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True):
    env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}", **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout
    return proc


def verify(cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`make verify` with this interpreter's environment (`-o install`: no new venv)."""
    return run(["make", "-o", "install", "verify", f"VENV={VENV}"], cwd, env, check=False)


def copy_repo(dst: Path, params: Path) -> Path:
    """The working tree's tracked and unignored files, as a fresh git repo, with `params`."""
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO).split()
    # Experiment records name commits of the project's history, which a fresh repo lacks.
    for rel in (f for f in files if not f.startswith("reports/experiments/")):
        if (REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dst / rel)
    (dst / "dvc.lock").unlink(missing_ok=True)
    shutil.copy(params, dst / "params.yaml")
    run(["git", "init", "-q"], dst)
    run(["git", "config", "user.name", "entropy-lab tests"], dst)
    run(["git", "config", "user.email", "tests@entropy-lab.invalid"], dst)
    run(["dvc", "unfreeze", "harvest"], dst)  # the committed pool is not this profile's
    run(["git", "add", "-A"], dst)
    return dst


@pytest.fixture
def repo_copy(tmp_path, fast_params) -> Path:
    return copy_repo(tmp_path / "repo", fast_params)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> Path:
    """A copy on the shrunk profile after `dvc repro`, with its results committed."""
    tmp = tmp_path_factory.mktemp("pipeline")
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(shrink(yaml.safe_load((REPO / "params.yaml").read_text()))))
    repo = copy_repo(tmp / "repo", params)
    run(["git", "commit", "-qm", "files"], repo)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "dvc repro"], repo)
    return repo


def test_repro_ends_with_a_report_that_verify_reproduces_and_tampering_fails(reproduced):
    repo = reproduced
    assert "up to date" in run(["dvc", "status"], repo)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == {
        "check-params",
        "harvest",
        "build@kjv-tiny",
        "models",
        "tasks",
        "train@kjv-tiny-ce_multisample",
        "train@kjv-tiny-ce_kl",
        "train@kjv-tiny-seeded",
        "evaluate@kjv-tiny",
        "ab-generate@kjv-tiny-12",
        "ab-metrics@kjv-tiny-12",
        "ab-analyze",
        "report",
    }
    report = (repo / "reports" / "report.md").read_text()
    assert report.index("## Findings") < report.index("## 1. Entropy harvest")
    assert "### The primary claim" in report
    assert (
        f"manifest digest `{json.loads((repo / 'reports/ab/manifest.json').read_text())['digest'][:12]}`"
        in report
    )
    ok = verify(repo)
    assert ok.returncode == 0 and "every number" in ok.stdout, ok.stdout + ok.stderr

    def tampered(rel: str, change) -> str:
        """Run verify with one file changed; put the file back; return verify's output."""
        path = repo / rel
        original = path.read_bytes()
        path.unlink()  # never write through to a DVC cache link
        path.write_bytes(change(original))
        try:
            proc = verify(repo)
        finally:
            path.unlink()
            path.write_bytes(original)
        assert proc.returncode != 0
        return proc.stdout

    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    rejections = metrics["ab"]["aa"]["per_metric"]["rejections"]

    def one_more_rejection(b: bytes) -> bytes:
        m = json.loads(b)
        m["ab"]["aa"]["per_metric"]["rejections"] += 1
        return json.dumps(m, indent=2, sort_keys=True).encode()

    out = tampered("reports/metrics.json", one_more_rejection)
    assert f"ab.aa.per_metric.rejections: reported {rejections + 1}, recomputed {rejections}" in out

    line = next(x for x in report.splitlines() if x.startswith("| jitter |"))
    out = tampered(
        "reports/report.md",
        lambda b: b.replace(
            line.encode(), line.replace("| jitter | ", "| jitter | 7.99 ~").encode()
        ),
    )
    assert "report.md line" in out

    def sharper_model(b: bytes) -> bytes:
        df = pd.read_parquet(io.BytesIO(b))
        i = df.index[df.tvd > 0.01][0]
        df.at[i, "model"] = df.at[i, "target"]  # claim one record was learnt exactly
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()

    # an edited artefact is named by dvc status; the numbers are recomputed from the bytes
    # dvc.lock names (the cache's), never from the edited file
    out = tampered("data/eval/kjv-tiny/records.parquet", sharper_model)
    assert "dvc status: evaluate@kjv-tiny" in out and "teaching.kjv-tiny." not in out
    assert "up to date" in run(["dvc", "status"], repo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server(tmp_path) -> Iterator[dict]:
    """A real S3 server on loopback (`rclone serve s3`) with the bucket the repo's remote names;
    yields the environment DVC reads the endpoint and keys from."""
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    bucket = config["'remote \"storage\"'"]["url"].removeprefix("s3://").split("/")[0]
    (tmp_path / "s3" / bucket).mkdir(parents=True)
    port, key, secret = free_port(), "entropylabtests", "entropylabtestsecret"
    server = subprocess.Popen(
        [
            str(VENV / "bin" / "rclone"),
            "serve",
            "s3",
            "--auth-key",
            f"{key},{secret}",
            "--addr",
            f"127.0.0.1:{port}",
            str(tmp_path / "s3"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and server.poll() is None, "rclone did not start"
            time.sleep(0.2)
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_push_to_s3_clone_pull_and_verify(reproduced, s3_server, tmp_path):
    """The reviewer's flow against a real S3 server: push every artefact, clone, pull, verify."""
    run(["dvc", "push", "-r", "storage"], reproduced, s3_server)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(reproduced), str(clone)], tmp_path)
    assert not (clone / "data" / "eval" / "kjv-tiny").exists()  # only in the remote
    run(["dvc", "pull", "-r", "storage"], clone, s3_server)
    assert "up to date" in run(["dvc", "status"], clone)
    for rel in (
        "data/entropy",
        "models/kjv-tiny",
        "adapters/kjv-tiny",
        "data/eval",
        "data/ab_metrics",
    ):
        assert sha256_path(clone / rel) == sha256_path(reproduced / rel), rel
    proc = verify(clone, s3_server)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_fresh_clone_verifies_what_git_holds_and_a_bundle_checks_the_rest(reproduced, tmp_path):
    """A reviewer with no DVC cache and no remote: `make verify` re-assesses the committed pool
    and every claim git can back, lists each claim it could not check with what it needs, and
    exits 0 (DVC's "not in cache" for every absent output is no difference); from a bundle
    (`entropy-lab bundle`, written outside the repository) alone it checks every claim. A file
    here that differs from dvc.lock is still a difference; a tampered bundle is refused."""
    bundle = tmp_path / "claims.tar.gz"
    made = run(["entropy-lab", "bundle", "--out", str(bundle)], reproduced)
    assert "wrote" in made and bundle.stat().st_size < 64 * 2**20
    assert sorted(os.listdir(tmp_path)) == ["claims.tar.gz"]  # no temporary left beside it
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(reproduced), str(clone)], tmp_path)
    assert not (clone / ".dvc" / "cache").exists()
    bare = verify(clone)
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert "differences" not in bare.stderr and "dvc status failed" not in bare.stdout
    assert "checked: harvest: re-assessed from the committed pool" in bare.stdout
    assert "checked: dvc status: the code, params and artefacts here" in bare.stdout
    unchecked = [x for x in bare.stdout.splitlines() if x.startswith("not checked here:")]
    assert unchecked and all("; needs " in x for x in unchecked), bare.stdout
    assert any("teaching/kjv-tiny" in x and "data/eval/kjv-tiny/records.parquet" in x
               for x in unchecked), bare.stdout  # fmt: skip
    assert "routes:" in bare.stdout and "--bundle" in bare.stdout

    def from_bundle(path: Path) -> subprocess.CompletedProcess:
        return run(["entropy-lab", "verify", "--bundle", str(path)], clone, check=False)

    full = from_bundle(bundle)
    assert full.returncode == 0, full.stdout + full.stderr
    assert "not checked here" not in full.stdout
    assert "every number in reports/report.md and every record is reproduced" in full.stdout
    readme = clone / "models" / "README.md"  # in git, inside the dependency `models`
    readme.write_text(readme.read_text() + "edited\n")
    edited = from_bundle(bundle)
    assert edited.returncode == 1, edited.stdout + edited.stderr
    assert "dvc status: models: changed deps models modified" in edited.stdout
    run(["git", "checkout", "models/README.md"], clone)
    with tarfile.open(bundle) as tar:  # one object's bytes changed: its name no longer fits
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(forged, "w:gz") as tar:
        for i, (m, data) in enumerate(members):
            if i == len(members) - 1:
                data = data + b"x"
                m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    bad = from_bundle(forged)
    assert bad.returncode == 2 and "does not hash to its name" in bad.stderr


def test_freeze_harvest_and_rerun_is_byte_identical(reproduced):
    repo = reproduced
    pool = sha256_path(repo / "data" / "entropy")
    deterministic = {p: sha256_path(repo / p) for p in OUTPUTS}

    # Harvesting is the one non-deterministic stage: freeze it, and everything reruns the same.
    run(["dvc", "freeze", "harvest"], repo)
    run(["dvc", "repro", "--force"], repo)
    assert sha256_path(repo / "data" / "entropy") == pool
    assert {p: sha256_path(repo / p) for p in deterministic} == deterministic
    assert "up to date" in run(["dvc", "status"], repo)

    # Unfrozen, a forced rerun harvests new entropy (this test runs last: it leaves the copy stale).
    run(["dvc", "unfreeze", "harvest"], repo)
    run(["dvc", "repro", "--force", "harvest"], repo)
    assert sha256_path(repo / "data" / "entropy") != pool


def test_a_fresh_clone_reproduces_the_committed_outputs_and_a_changed_one_is_named(
    tmp_path_factory,
):
    """`entropy-lab reproduce-check` on the shrunk profile: with the harvest frozen and its pool
    in git, a fresh clone's `make repro` gives the committed bytes; an output edited after the
    fact is listed, while the claims (recomputed from the artefacts) still hold."""
    tmp = tmp_path_factory.mktemp("reproduce")
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(shrink(yaml.safe_load((REPO / "params.yaml").read_text()))))
    repo = copy_repo(tmp / "repo", params)
    run(["git", "commit", "-qm", "files"], repo)  # DVCLive needs a commit to start from
    run(["dvc", "repro"], repo)
    run(["dvc", "freeze", "harvest"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "frozen harvest, results"], repo)
    assert "data/entropy/pool.bin" in run(["git", "ls-files", "data/entropy"], repo)
    ok = run(["entropy-lab", "reproduce-check", "--record"], repo, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "reproduced every committed byte" in ok.stdout
    assert re.search(r"^claims: (\d+) of \1 hold", ok.stdout, re.M), ok.stdout
    assert len(ok.stdout.splitlines()) <= 20 and "[1/" in ok.stderr  # a summary, and progress
    (record,) = (repo / "reports" / "reproductions").glob("*.json")
    assert json.loads(record.read_text())["bytes"]["identical"] is True
    record.unlink()

    report = repo / "reports" / "report.md"
    report.write_text(report.read_text().replace("## 1. Entropy harvest", "## 1. Entropy"))
    run(["git", "commit", "-qam", "an edited report"], repo)
    bad = run(["entropy-lab", "reproduce-check"], repo, check=False)
    # the bytes differ, the claims (from the artefacts, not the edited text) still hold
    assert bad.returncode == 0, bad.stdout + bad.stderr
    assert [
        x.strip() for x in bad.stdout.splitlines() if x.strip().startswith(("git:", "dvc:"))
    ] == ["git: reports/report.md (M)"]
    assert "1 outputs differ in their bytes" in bad.stdout


def test_queued_experiments_run_on_dvcs_queue_and_show_up(repo_copy):
    """`dvc exp run --queue` twice, `dvc queue start`, both in `dvc exp show`.

    Queue workers copy only what git tracks (the fixture commits everything) and commit
    experiments with git, so the repository needs an identity (`copy_repo` sets one)."""
    run(["git", "commit", "-qm", "files"], repo_copy)
    for seed in (11, 12):
        run(["dvc", "exp", "run", "--queue", "-S", f"tasks.seed={seed}"], repo_copy)
    run(["dvc", "queue", "start", "-j", "1"], repo_copy)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo_copy)
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    run(["dvc", "queue", "stop"], repo_copy)
    assert status.count("Success") == 2, status
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo_copy))
    seeds = {
        exp["data"]["params"]["params.yaml"]["data"]["tasks"]["seed"]
        for commit in shown
        for exp in commit.get("experiments") or []
        for exp in exp["revs"]
        if exp.get("data", {}).get("params")
    }
    assert {11, 12} <= seeds, seeds
