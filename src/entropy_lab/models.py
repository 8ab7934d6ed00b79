"""Resolve and load causal LMs: local first, hub last, safetensors only, no remote code.

Resolution order for a name: an explicit local directory, then `models/<name>/`, then
the Hugging Face cache, then the hub (a download into the cache). An unknown model is
a one-line error that lists every place looked in.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entropy_lab.config import ModelProfile, ModelsSection
from entropy_lab.errors import UserError

MODELS_DIR = Path("models")
REPORTS = Path("reports/models")
# What a causal LM needs from a repo: weights as safetensors, config, tokenizer files.
ALLOW_PATTERNS = ["*.safetensors", "*.json", "tokenizer.model", "*.txt", "*.jinja"]


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path
    source: str  # "path" | "models-dir" | "hf-cache" | "hub"
    repo: str | None = None
    revision: str | None = None


def is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _snapshot_revision(path: Path) -> str | None:
    """The commit hash of a hub snapshot directory (`.../snapshots/<commit>`)."""
    return path.name if path.parent.name == "snapshots" else None


def resolve(
    name: str,
    repo: str | None = None,
    revision: str | None = None,
    models_dir: Path = MODELS_DIR,
) -> ResolvedModel:
    """Find `name` locally, then in the HF cache, then on the hub (as `repo`, default `name`)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    looked: list[str] = []
    explicit = Path(name).expanduser()
    if is_model_dir(explicit):
        return ResolvedModel(name, explicit, "path")
    looked.append(f"path {explicit}")
    local = models_dir / name
    if is_model_dir(local):
        return ResolvedModel(name, local, "models-dir")
    looked.append(f"{local}/")

    repo_id = repo or name
    kwargs: dict[str, Any] = {"revision": revision, "allow_patterns": ALLOW_PATTERNS}
    try:
        path = Path(snapshot_download(repo_id, local_files_only=True, **kwargs))
        if is_model_dir(path):
            return ResolvedModel(name, path, "hf-cache", repo_id, _snapshot_revision(path))
        looked.append(f"HF cache {repo_id} (incomplete snapshot)")
    except (LocalEntryNotFoundError, ValueError, OSError):
        looked.append(f"HF cache {repo_id}")
    try:
        path = Path(snapshot_download(repo_id, etag_timeout=5, **kwargs))
        if is_model_dir(path):
            return ResolvedModel(name, path, "hub", repo_id, _snapshot_revision(path))
        looked.append(f"hub {repo_id} (no config.json)")
    except (HfHubHTTPError, LocalEntryNotFoundError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        looked.append(f"hub {repo_id} ({reason})")
    raise UserError(f"model {name!r} not found; looked in: " + "; ".join(looked))


def resolve_profile(
    name: str, section: ModelsSection, models_dir: Path = MODELS_DIR
) -> ResolvedModel:
    profile = section.profiles[name]
    return resolve(name, profile.repo, profile.revision, models_dir)


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "models.device = 'cuda': no CUDA device on this machine; allowed: auto, cpu"
        )
    return requested


def pick_dtype(requested: str, device: str):
    import torch

    if requested == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, requested)


def check_quantization(name: str, profile: ModelProfile, device: str) -> None:
    """8-bit/4-bit loading needs bitsandbytes on CUDA; never fall back to full precision."""
    if profile.quantization != "none" and device != "cuda":
        raise UserError(
            f"models.profiles.{name}.quantization = {profile.quantization!r} needs CUDA "
            f"(bitsandbytes), but the device is {device}; set it to 'none' or run on a GPU"
        )


def _quantization_config(quantization: str, compute_dtype):
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=True,
    )


def check_model_dir(name: str, path: Path, what: str = "model") -> None:
    """What loading a model directory needs, each failure one line before any work: regular
    files only, complete safetensors weights (pickled checkpoints are refused), and a
    config.json that transformers reads without remote code (no `auto_map`)."""
    from transformers import AutoConfig

    from entropy_lab.artefacts import check_safetensors, read_json_object, regular_tree

    hint = f"rebuild or re-download {what} {name!r}"
    regular_tree(path, hint)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise UserError(
            f"{what} {name!r} at {path} has no .safetensors weights; "
            "pickled checkpoints (.bin, .pt) are refused"
        )
    for file in weights:
        check_safetensors(file, hint)
    if "auto_map" in read_json_object(path / "config.json", hint):
        raise UserError(
            f"{what} {name!r} at {path}: config.json has an auto_map (remote code), which is "
            "refused; allowed: architectures transformers ships"
        )
    try:
        AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception as exc:  # transformers' and huggingface_hub's validation errors vary
        raise UserError(
            f"{what} {name!r} at {path}: config.json does not load ({first_line(exc)}); {hint}"
        ) from None


def first_line(exc: BaseException) -> str:
    """An exception as a short phrase for an error line."""
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


class _NoLoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


@contextlib.contextmanager
def no_load_report():
    """Without transformers' multi-line table of missing and mismatched tensors: `load` says
    what decides, in one line."""
    logger, quiet = logging.getLogger("transformers.modeling_utils"), _NoLoadReport()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def load(
    resolved: ResolvedModel,
    device: str = "auto",
    dtype: str = "auto",
    quantization: str = "none",
):
    """Load (model, tokenizer) from a resolved directory: safetensors only, no remote code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = pick_device(device)
    check_quantization(resolved.name, ModelProfile(quantization=quantization), dev)
    check_model_dir(resolved.name, resolved.path)
    torch_dtype = pick_dtype(dtype, dev)
    kwargs: dict[str, Any] = {
        "trust_remote_code": False,
        "use_safetensors": True,
        "dtype": torch_dtype,
        "ignore_mismatched_sizes": True,  # refused below, in one line
    }
    if quantization != "none":
        kwargs["quantization_config"] = _quantization_config(quantization, torch_dtype)
        kwargs["device_map"] = {"": dev}
    try:
        with no_load_report():
            model, info = AutoModelForCausalLM.from_pretrained(
                resolved.path, output_loading_info=True, **kwargs
            )
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=False)
    # RuntimeError: torch's, for a size a config gives that no tensor can have (negative)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise UserError(
            f"model {resolved.name!r} at {resolved.path} cannot be loaded: {first_line(exc)}"
        ) from None
    if missing := info.get("missing_keys"):  # a random initialisation would train silently
        raise UserError(
            f"model {resolved.name!r} at {resolved.path}: its weights lack {len(missing)} of the "
            f"model's tensors (e.g. {sorted(missing)[0]}); refusing a random initialisation"
        )
    if mismatched := info.get("mismatched_keys"):  # reinitialised, as a missing tensor is
        key, stored, built = sorted(mismatched)[0]
        raise UserError(
            f"model {resolved.name!r} at {resolved.path}: config.json does not fit its weights "
            f"({len(mismatched)} tensors, e.g. {key}: {list(stored)} stored, {list(built)} built)"
        )
    if quantization == "none":
        model = model.to(dev)
    return model.eval(), tokenizer


def load_profile(name: str, section: ModelsSection, models_dir: Path = MODELS_DIR):
    """Resolve and load a profile with the section's device, dtype and thread count:
    (model, tokenizer, resolved)."""
    import torch

    torch.set_num_threads(section.threads)
    profile = section.profiles[name]
    check_quantization(name, profile, pick_device(section.device))
    resolved = resolve_profile(name, section, models_dir)
    return (*load(resolved, section.device, section.dtype, profile.quantization), resolved)


def model_positions(model) -> int | None:
    """How many positions the model can attend over, when its config says."""
    c = model.config
    return getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None)


def is_chat(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_ids(tokenizer, prompt: str, max_tokens: int, suffix: str = "") -> list[int]:
    """The prompt as the model sees it: a user turn in its chat template, up to the assistant's
    generation prompt, when it has one; else the text plus `suffix`. Left-truncated to
    `max_tokens`. The rendered template holds its own special tokens, so none are added."""
    text = f"{prompt}{suffix}"
    if is_chat(tokenizer):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    return tokenizer(text, add_special_tokens=False).input_ids[-max_tokens:]


ANSWER_MARK = "\x00answer\x00"  # text no template writes: where an assistant turn's content ends


@functools.lru_cache(maxsize=64)
def end_of_answer(tokenizer) -> int:
    """The token that ends an answer: for a chat model, the end-of-turn token its template
    writes after an assistant's content (the first special token there: `<|im_end|>` in
    ChatML), so answers are scored and cut inside the assistant turn; else EOS."""
    if not is_chat(tokenizer):
        return tokenizer.eos_token_id
    turn = [{"role": "user", "content": "?"}, {"role": "assistant", "content": ANSWER_MARK}]
    _, mark, tail = tokenizer.apply_chat_template(turn, tokenize=False).rpartition(ANSWER_MARK)
    after = tokenizer(tail, add_special_tokens=False).input_ids if mark else []
    special = set(tokenizer.all_special_ids) | {
        i for i, t in tokenizer.added_tokens_decoder.items() if t.special
    }
    return next((i for i in after if i in special), tokenizer.eos_token_id)


def stop_tokens(model, tokenizer) -> int | list[int]:
    """Where generation stops: the model's generation config's EOS (the tokenizer's where it
    has none) and, for a chat model, its end of turn too."""
    eos = model.generation_config.eos_token_id
    eos = tokenizer.eos_token_id if eos is None else eos
    if not is_chat(tokenizer):
        return eos
    ids, end = (eos if isinstance(eos, list) else [eos]), end_of_answer(tokenizer)
    return ids if end in ids else [*ids, end]


def chat_facts(tokenizer) -> dict[str, Any]:
    """What a manifest records of a chat model's prompt format: its template's sha256 and the
    end-of-turn token. Nothing for a plain model, whose prompts are the text itself."""
    from entropy_lab.provenance import canonical_json, sha256_bytes

    if not is_chat(tokenizer):
        return {}
    template = tokenizer.chat_template
    text = template.encode() if isinstance(template, str) else canonical_json(template)
    end = tokenizer.convert_ids_to_tokens(end_of_answer(tokenizer))
    return {"chat_template": {"sha256": sha256_bytes(text), "end_of_turn": end}}


@contextlib.contextmanager
def peft_quietly():
    """peft 0.21 reads the model's deprecated `is_gradient_checkpointing` whenever it wraps one,
    and transformers warns; and `fan_in_fan_out` is one setting for every target, so with
    GPT-2's Conv1D layers and a Linear one (`lm_head`) among the targets peft corrects it per
    layer and warns. Nothing a user can act on, so those warnings are filtered."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        warnings.filterwarnings("ignore", "fan_in_fan_out is set to", UserWarning)
        yield


def weight_hashes(path: Path) -> dict[str, str]:
    from entropy_lab.provenance import sha256_file

    return {p.name: sha256_file(p) for p in sorted(path.glob("*.safetensors"))}


RESOLVED = Path("data/models/resolved.json")
