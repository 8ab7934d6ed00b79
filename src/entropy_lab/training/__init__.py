"""Training: the default LM from scratch (pretrain)."""
