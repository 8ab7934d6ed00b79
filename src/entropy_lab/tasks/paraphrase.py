"""Optional paraphrasing of prompts by a local instruct model (greedy, so deterministic).

The builder keeps a paraphrase only if it preserves every entity (tasks.builder.keeps_entities).
"""

from __future__ import annotations

import torch

from entropy_lab.models import stop_tokens

INSTRUCTION = (
    "Rewrite the following request in different words. Keep every number and every listed "
    "item exactly as written. Reply with the rewritten request only.\n\nRequest: {prompt}"
)


class HFParaphraser:
    def __init__(self, model, tokenizer, max_new_tokens: int, batch_size: int = 16):
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.tokenizer.padding_side = "left"  # decoder-only batches pad on the left

    def render(self, prompt: str) -> str:
        text = INSTRUCTION.format(prompt=prompt)
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        return f"{text}\nRewritten request:"

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(prompts), self.batch_size):
            batch = self.tokenizer(
                [self.render(p) for p in prompts[i : i + self.batch_size]],
                return_tensors="pt",
                padding=True,
                add_special_tokens=not self.tokenizer.chat_template,  # a template writes its own
            ).to(self.model.device)
            ids = self.model.generate(
                **batch,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=stop_tokens(self.model, self.tokenizer),
            )
            new = ids[:, batch["input_ids"].shape[1] :]
            out += [
                t.strip().split("\n")[0]
                for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)
            ]
        return out
