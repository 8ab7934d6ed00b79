"""Adapters and checkpoints on disk: peft's adapter layout made byte-stable, and the
checkpoints a killed `train` stage resumes from (only under the same run digest)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def canonical_adapter_config(path: Path) -> None:
    """Sort the module lists peft keeps as sets: their saved order follows Python's per-process
    string hashing, so the same adapter would get different bytes on every run."""
    config = json.loads(path.read_bytes())
    for key in ("target_modules", "modules_to_save"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    text = json.dumps(config, indent=2, sort_keys=True)  # peft's own layout
    path.write_text(text, encoding="utf-8")


def save_adapter(directory: Path, model) -> None:
    """The adapter in peft's layout. LoRA on an embedding saves its A and B only: peft would
    also save the frozen base embedding, which GPT-2 ties to lm_head, and safetensors refuses
    tensors that share memory."""
    model.save_pretrained(directory, safe_serialization=True, save_embedding_layers=False)
    canonical_adapter_config(directory / "adapter_config.json")


def adapter_state(model) -> dict[str, torch.Tensor]:
    """The trained tensors of a checkpoint, as `save_adapter` stores them."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model, save_embedding_layers=False)
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


@dataclass
class Checkpoints:
    """Where one run checkpoints, and the digest of what determines it (params, inputs, code):
    a checkpoint resumes only the run that wrote it. `legs` are the seconds of the earlier
    runs that a resumed run continues (saved with each checkpoint), for its run record."""

    directory: Path
    digest: str
    legs: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def save(self, model, opt, step: int, curve: list[dict]) -> None:
        from safetensors.torch import save_file

        from entropy_lab.provenance import atomic_dir, write_json

        with atomic_dir(self.directory) as tmp:
            save_file(adapter_state(model), tmp / "adapter.safetensors")
            torch.save(opt.state_dict(), tmp / "optimizer.pt")
            legs = [*self.legs, round(time.time() - self.started, 1)]
            write_json(tmp / "state.json",
                       {"step": step, "curve": curve, "digest": self.digest, "legs": legs})  # fmt: skip

    def resume(self, model, opt, steps: int) -> tuple[int, list[dict]]:
        """(step, curve) of this run's checkpoint, loaded into `model` and `opt`; (0, []) when
        there is none, or it belongs to another run, or it cannot be read (it is removed)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        from entropy_lab.provenance import inside_repository

        inside_repository(self.directory)  # a link here is refused, not read or removed
        state_path = self.directory / "state.json"
        if not state_path.is_file():
            return 0, []
        try:  # read everything before touching the model: a failure leaves it as it was
            state = json.loads(state_path.read_bytes())
            if state["digest"] != self.digest:
                log.info("checkpoint in %s is from another run; starting afresh", self.directory)
                self.clear()
                return 0, []
            tensors = load_file(self.directory / "adapter.safetensors")
            optimizer = torch.load(self.directory / "optimizer.pt", weights_only=True)
            step, curve = int(state["step"]), list(state["curve"])
            legs = [float(x) for x in state.get("legs", [])]
            if not (0 < step < steps and curve):  # a step this run could not have saved
                raise ValueError(f"step {step} of {steps}")
        except Exception as exc:  # a checkpoint this stage wrote, damaged: never fatal
            log.warning("checkpoint in %s is unreadable (%s); starting afresh", self.directory,
                        type(exc).__name__)  # fmt: skip
            self.clear()
            return 0, []
        set_peft_model_state_dict(model, tensors)
        opt.load_state_dict(optimizer)
        self.legs = legs  # the seconds up to that checkpoint, of each earlier leg
        log.info("resuming from step %d", step)
        return step, curve

    def clear(self) -> None:
        from entropy_lab.provenance import inside_repository

        inside_repository(self.directory)  # never through a link: rmtree would follow it
        shutil.rmtree(self.directory, ignore_errors=True)  # every torchrun process may try
