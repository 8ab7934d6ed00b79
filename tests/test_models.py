"""Model resolution order, loading per architecture, and refusals (quantisation on CPU, pickles)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import constants

from entropy_lab.config import ModelProfile, load_params
from entropy_lab.errors import UserError
from entropy_lab.models import check_quantization, load, pick_dtype, resolve
from entropy_lab.stages import models as models_stage
from tests.conftest import save_tiny_model

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty HF cache and a hub endpoint on a closed loopback port (unreachable, fails fast)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return cache


def put_in_cache(cache: Path, repo: str, seed: int) -> Path:
    """Lay a model out the way huggingface_hub stores a downloaded snapshot."""
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    snapshot = save_tiny_model("gpt2", repo_dir / "snapshots" / REVISION, seed=seed)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(REVISION)
    return snapshot


def test_explicit_path_first(tmp_path, hf_cache):
    explicit = save_tiny_model("gpt2", tmp_path / "mine")
    save_tiny_model("gpt2", tmp_path / "models" / str(explicit))  # never reached
    r = resolve(str(explicit), models_dir=tmp_path / "models")
    assert (r.source, r.path) == ("path", explicit)


def test_models_dir_before_cache(tmp_path, hf_cache):
    local = save_tiny_model("gpt2", tmp_path / "models" / "org-model")
    put_in_cache(hf_cache, "org/model", seed=1)
    r = resolve("org-model", repo="org/model", models_dir=tmp_path / "models")
    assert (r.source, r.path) == ("models-dir", local)


def test_cache_before_hub(tmp_path, hf_cache):
    snapshot = put_in_cache(hf_cache, "org/model", seed=1)
    r = resolve("org-model", repo="org/model", models_dir=tmp_path / "models")
    assert r.source == "hf-cache"
    assert r.path.resolve() == snapshot.resolve()
    assert (r.repo, r.revision) == ("org/model", REVISION)


def test_unreachable_hub_lists_where_it_looked(tmp_path, hf_cache):
    with pytest.raises(UserError) as info:
        resolve("nobody-has-this", repo="org/absent", models_dir=tmp_path / "models")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("model 'nobody-has-this' not found; looked in: path nobody-has-this")
    for place in (
        f"{tmp_path / 'models' / 'nobody-has-this'}/",
        "HF cache org/absent",
        "hub org/absent",
    ):
        assert place in msg


def test_loads_each_architecture(tiny_model_dir):
    r = resolve(str(tiny_model_dir))
    model, tokenizer = load(r, device="cpu", dtype="auto")
    assert model.dtype == torch.float32 and not model.training
    ids = tokenizer("In the beginning", return_tensors="pt").input_ids
    assert ids[0].tolist() == list(b"In the beginning")
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=256)
    assert out.shape == (1, ids.shape[1] + 5)


def test_explicit_dtype(tiny_model_dir):
    model, _ = load(resolve(str(tiny_model_dir)), device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    assert pick_dtype("auto", "cuda") == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU refusal")
@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_quantisation_on_cpu_is_refused(tiny_model_dir, quantization):
    with pytest.raises(UserError, match=f"quantization = '{quantization}' needs CUDA") as info:
        load(resolve(str(tiny_model_dir)), device="auto", quantization=quantization)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="needs CUDA"):
        check_quantization("m", ModelProfile(quantization=quantization), "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU refusal")
def test_cuda_requested_without_cuda(tiny_model_dir):
    with pytest.raises(UserError, match=re.escape("models.device = 'cuda': no CUDA device")):
        load(resolve(str(tiny_model_dir)), device="cuda")


def test_pickled_weights_refused(tmp_path):
    src = save_tiny_model("gpt2", tmp_path / "m")
    pickled = tmp_path / "pickled"
    shutil.copytree(src, pickled)
    (pickled / "model.safetensors").unlink()
    torch.save({}, pickled / "pytorch_model.bin")
    with pytest.raises(UserError, match=re.escape("no .safetensors weights")):
        load(resolve(str(pickled)), device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU refusal")
def test_stage_refuses_quantised_profile_before_any_work(params_data, tmp_path, monkeypatch):
    params_data["models"]["use"] = ["kjv-tiny", "mistral-7b-instruct"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_data))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        UserError,
        match=re.escape("models.profiles.mistral-7b-instruct.quantization = '8bit' needs CUDA"),
    ):
        models_stage.run(
            load_params(Path("params.yaml")), tmp_path / "models", tmp_path / "data" / "r.json"
        )
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]


@pytest.mark.gpu
@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_quantised_load_on_cuda(tmp_path, quantization):
    path = save_tiny_model("llama", tmp_path / "m")
    model, _ = load(resolve(str(path)), device="cuda", quantization=quantization)
    assert any(
        "Linear8bitLt" in type(m).__name__ or "Linear4bit" in type(m).__name__
        for m in model.modules()
    )
