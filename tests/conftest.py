"""Shared fixtures: tiny models of each architecture the study uses, built from config."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

from entropy_lab.numerics import apply

apply("portable")  # the default's CPU kernels, pinned before torch loads (as the stages do)
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARCHS = ("gpt2", "gpt_neox", "llama")


def pytest_collection_modifyitems(config, items):
    """GPU-marked tests skip cleanly on machines without CUDA (CI never has one)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def tiny_config(arch: str, positions: int = 64):
    """A ~100k-parameter causal LM config over the 257-token byte vocabulary."""
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig

    common = {"vocab_size": 257, "bos_token_id": 256, "eos_token_id": 256, "pad_token_id": 256}
    if arch == "gpt2":
        return GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=positions, **common)
    if arch == "gpt_neox":
        return GPTNeoXConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=positions,
            **common,
        )
    if arch == "llama":
        return LlamaConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            intermediate_size=64,
            max_position_embeddings=positions,
            **common,
        )
    raise ValueError(arch)


def save_tiny_model(arch: str, path: Path, seed: int = 0, positions: int = 64) -> Path:
    from transformers import AutoModelForCausalLM

    from entropy_lab.training.pretrain import byte_tokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, positions))
    model.save_pretrained(path, safe_serialization=True)
    byte_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="session", params=ARCHS)
def tiny_model_dir(request, tmp_path_factory) -> Path:
    """A saved tiny model (safetensors + byte tokenizer) for each architecture."""
    return save_tiny_model(request.param, tmp_path_factory.mktemp(request.param) / "model")


def write_pool(root: Path, bytes_per_source: int = 1 << 17) -> Path:
    """A stand-in entropy pool (PCG64 bytes, kernel then jitter) with a consistent card and
    harvest manifest, for stages that read the pool; returns its directory."""
    import numpy as np

    data = np.random.default_rng(0).bytes(2 * bytes_per_source)
    segments = [
        (s, i * bytes_per_source, (i + 1) * bytes_per_source)
        for i, s in enumerate(("kernel", "jitter"))
    ]
    return write_pool_dir(root / "data" / "entropy", data, segments)


def write_pool_dir(directory: Path, data: bytes, segments: list[tuple[str, int, int]]) -> Path:
    """pool.bin, its card and the harvest manifest that vouches for both."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pool.bin").write_bytes(data)
    card = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "segments": [{"source": s, "start": a, "end": b} for s, a, b in segments],
        "bytes_per_source": {s: b - a for s, a, b in segments},
    }
    (directory / "pool.json").write_text(json.dumps(card))
    manifest = {
        "params": {"harvest.sources": [{"name": s, "bytes": b - a} for s, a, b in segments]},
        "outputs": {
            name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in ("pool.bin", "pool.json")
        },
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def without_imported(data: dict) -> dict:
    """The default params without the real imported model (tests build tiny models; the
    converted SmolLM2 is 538 MB and only slow tests load it)."""
    m = data["models"]
    real = set(m.get("convert", []))
    m["use"] = [x for x in m["use"] if x not in real]
    m["convert"] = []
    data["evaluate"]["untaught"] = [x for x in data["evaluate"]["untaught"] if x not in real]
    return data


@pytest.fixture
def params_data() -> dict:
    """The repository's params.yaml as plain data, to be edited by a test."""
    return without_imported(yaml.safe_load((REPO / "params.yaml").read_text()))


@pytest.fixture
def fast_params(params_data, tmp_path) -> Path:
    """params.yaml with a model small enough to train in a few seconds, in a temp dir."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(shrink(params_data)))
    return path


def shrink(params_data: dict) -> dict:
    """The default params, shrunk so that the whole pipeline runs in a few minutes."""
    without_imported(params_data)
    params_data["models"]["threads"] = 1
    params_data["models"]["built"]["kjv-tiny"].update(
        n_layer=1,
        n_head=2,
        n_embd=16,
        context=256,
        steps=6,
        batch_size=4,
        warmup_steps=1,
        eval_every=3,
        eval_batches=1,
    )
    params_data["training"].update(
        steps=4,
        batch_size=4,
        warmup_steps=1,
        eval_every=2,
        eval_records=10,
        checkpoint_every=2,
        max_support_tokens=64,
    )
    params_data["harvest"]["sources"] = [
        {"name": "kernel", "bytes": 16384, "claimed_h": 6.0},
        {"name": "jitter", "bytes": 16384, "claimed_h": 2.0},
    ]
    params_data["harvest"]["assessment"] = {
        "samples": 20_000,
        "sts_sequence_bits": 10_000,
        "margin_bits": 64,
    }
    params_data["tasks"]["seeded"].update(eval_records=4, eval_draws=16)
    params_data["tasks"]["counts"] = {
        "train": 200,
        "validation": 40,
        "test_template": 40,
        "test_family": 40,
    }
    ab = params_data["ab"]
    ab["prompts"] = ab["prompts"][:2] + ab["prompts"][-1:]
    ab["lengths"] = [12]
    ab["generate"].update(replicates=4, batch_size=8, aa_pairs=2)
    ab["metrics"].update(best_of_k=2, embedder="tfidf")
    ab["analysis"].update(bootstrap=200, permutations=2000)
    params_data["evaluate"].update(samples=16, batch_size=16, bootstrap=100, min_records_ci=3,
                                   records_per_family={"validation": 1, "test_template": 1,
                                                       "test_family": 2})  # fmt: skip
    return params_data


def small_harvest(params_data: dict, sources: list[dict] | None = None) -> dict:
    """The default params with a small, fast harvest (and, given, its own sources)."""
    data = copy.deepcopy(params_data)
    if sources is not None:
        data["harvest"]["sources"] = sources
        for section in (data["ab"]["generate"], data["tasks"]["seeded"]):
            section["source"] = sources[0]["name"]  # the pool's readers name a harvested source
    data["harvest"]["assessment"] = {
        "samples": 20_000,
        "sts_sequence_bits": 10_000,
        "margin_bits": 64,
    }
    return data


def external(tmp_path: Path, data: bytes, **spec) -> dict:
    """An external source reading `data` from data/external/ (the only place dumps may live)."""
    path = tmp_path / "data" / "external" / "dump.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {
        "name": "external",
        "bytes": 8192,
        "claimed_h": 6.0,
        "path": "data/external/dump.bin",
        "sha256": hashlib.sha256(data).hexdigest(),
    } | spec
