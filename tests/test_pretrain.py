"""The offline default model: byte tokenizer, corpus split, deterministic training, the stage."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from entropy_lab.cli import main
from entropy_lab.config import BuiltLM
from entropy_lab.training.pretrain import (
    EOS_ID,
    byte_tokenizer,
    corpus_path,
    encode,
    load_documents,
    split_documents,
    stop_rate,
    train,
)

SMALL = BuiltLM(
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
)


def test_byte_tokenizer_ids_are_bytes():
    tok = byte_tokenizer()
    text = "Let there be light. Ünïcödé — ok\n"
    ids = tok(text).input_ids
    assert ids == list(text.encode())
    assert tok.decode(ids) == text
    assert tok.eos_token_id == 256 and len(tok) == 257


def test_documents_are_cited_verses_split_disjointly_and_end_with_eos():
    docs = load_documents(corpus_path())
    assert len(docs) == 31103
    assert docs[0] == "Genesis 1:1 In the beginning God created the heaven and the earth."
    train_docs, val_docs = split_documents(docs, 0.02)
    assert val_docs == docs[::50] and train_docs == [d for i, d in enumerate(docs) if i % 50]
    ids = encode(["ab", "c"]).tolist()
    assert ids == [ord("a"), ord("b"), EOS_ID, ord("c"), EOS_ID]


def test_training_is_deterministic_and_learns():
    text = encode(["And God said, Let there be light: and there was light."] * 200)
    a = train(SMALL, text, text[:2000])
    b = train(SMALL, text, text[:2000])
    for (name, wa), wb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(wa, wb), name
    assert a.curve[-1]["val_loss"] < a.curve[0]["val_loss"] < 5.6  # ln(257) = 5.55 at init


def test_a_model_trained_on_eos_terminated_documents_learns_to_stop():
    """EOS after every document makes stopping a learned token; the same documents joined by
    newlines (how verses were joined before) give a model that never stops."""
    docs = [f"Psalm {i % 150 + 1}:{i % 7 + 1} Praise ye the LORD." for i in range(400)]
    p = SMALL.model_copy(update={"context": 64, "steps": 150, "eval_every": 150})
    tok = byte_tokenizer()
    with_eos = train(p, encode(docs), encode(docs[:40])).model
    assert stop_rate(with_eos, tok, docs[:20], 20, 0)["stop_rate"] >= 0.9
    joined = torch.tensor(list("\n".join(docs).encode()))
    without = train(p, joined, joined[:2000]).model
    assert stop_rate(without, tok, docs[:20], 20, 0)["stop_rate"] <= 0.1


def test_build_and_models_stages_write_model_manifest_metrics_and_resolution(
    fast_params, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke
    result = run(main, ["models", "--params", str(fast_params)])
    assert result.exit_code == 2 and "model 'kjv-tiny' is not built yet" in result.stderr
    result = run(main, ["build", "--model", "kjv-small", "--params", str(fast_params)])
    assert result.exit_code == 2 and "not in models.build" in result.stderr
    result = run(main, ["build", "--model", "kjv-tiny", "--params", str(fast_params)])
    assert result.exit_code == 0, result.output
    assert run(main, ["models", "--params", str(fast_params)]).exit_code == 0
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
    assert manifest["stage"] == "build"
    assert manifest["params"]["models.built.kjv-tiny.steps"] == 6
    assert manifest["seeds"] == {"init": 0, "batches": 1, "stop_rate": 0}
    resolved = json.loads((tmp_path / "data" / "models" / "resolved.json").read_text())
    assert resolved["kjv-tiny"]["source"] == "models-dir"
    assert (
        manifest["outputs"]["model.safetensors"]
        == resolved["kjv-tiny"]["weights"]["model.safetensors"]
    )
    reports = tmp_path / "reports" / "models" / "kjv-tiny"
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["val_loss"] > 0 and metrics["tokens_seen"] == 6 * 4 * 256
    assert 0 <= metrics["stop_rate"] <= 1 and metrics["stop_prompts"] == 64
    assert (reports / "live" / "plots" / "metrics" / "val_loss.tsv").exists()
    assert not list(tmp_path.glob("**/.*tmp-*"))

    weights = manifest["outputs"]["model.safetensors"]
    assert run(main, ["build", "--model", "kjv-tiny", "--params", str(fast_params)]).exit_code == 0
    again = json.loads((model_dir / "manifest.json").read_text())
    assert again == manifest and again["outputs"]["model.safetensors"] == weights
