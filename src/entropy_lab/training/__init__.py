"""Training: the built LMs from scratch (pretrain), LoRA SFT (sft, losses, scoring), checkpoints."""
