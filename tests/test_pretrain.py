"""The offline default model: byte tokenizer, corpus split, deterministic training, the stage."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.config import TinyLM
from entropy_lab.training.pretrain import (
    byte_tokenizer,
    corpus_path,
    load_verses,
    split_corpus,
    train,
)

SMALL = TinyLM(
    name="t",
    seed=0,
    n_layer=1,
    n_head=2,
    n_embd=16,
    context=32,
    steps=30,
    batch_size=8,
    lr=0.01,
    warmup_steps=2,
    weight_decay=0.1,
    eval_every=10,
    eval_batches=2,
    val_fraction=0.1,
    threads=1,
)


def test_byte_tokenizer_ids_are_bytes():
    tok = byte_tokenizer()
    text = "Let there be light. Ünïcödé — ok\n"
    ids = tok(text).input_ids
    assert ids == list(text.encode())
    assert tok.decode(ids) == text
    assert tok.eos_token_id == 256 and len(tok) == 257


def test_corpus_split_is_disjoint_and_complete():
    verses = load_verses(corpus_path())
    assert len(verses) == 31103 and verses[0].startswith("In the beginning God created")
    train_b, val_b = split_corpus(verses, 0.02)
    assert val_b.decode().split("\n") == verses[::50]
    assert train_b.decode().split("\n") == [v for i, v in enumerate(verses) if i % 50]


def test_training_is_deterministic_and_learns():
    text = ("And God said, Let there be light: and there was light. " * 200).encode()
    a = train(SMALL, text, text[:2000])
    b = train(SMALL, text, text[:2000])
    for (name, wa), wb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(wa, wb), name
    assert a.curve[-1]["val_loss"] < a.curve[0]["val_loss"] < 5.6  # ln(257) = 5.55 at init


def test_models_stage_writes_model_manifest_and_metrics(fast_params, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["models", "--params", str(fast_params)])
    assert result.exit_code == 0, result.output
    model_dir = tmp_path / "models" / "kjv-tiny"
    names = sorted(p.name for p in model_dir.iterdir())
    assert {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "manifest.json",
        "README.md",
    } <= set(names)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["stage"] == "models"
    assert manifest["params"]["models.tiny.steps"] == 6
    assert manifest["seeds"] == {"init": 0, "batches": 1}
    assert (
        manifest["outputs"]["model.safetensors"]
        == json.loads((tmp_path / "models" / "resolved.json").read_text())["kjv-tiny"]["weights"][
            "model.safetensors"
        ]
    )
    metrics = json.loads((tmp_path / "reports" / "models" / "metrics.json").read_text())
    assert metrics["val_loss"] > 0 and metrics["tokens_seen"] == 6 * 4 * 256
    assert (
        tmp_path / "reports" / "models" / "live" / "plots" / "metrics" / "val_loss.tsv"
    ).exists()
    assert not list(tmp_path.glob("**/.*tmp-*"))

    weights = manifest["outputs"]["model.safetensors"]
    assert CliRunner().invoke(main, ["models", "--params", str(fast_params)]).exit_code == 0
    again = json.loads((model_dir / "manifest.json").read_text())
    assert again == manifest and again["outputs"]["model.safetensors"] == weights
