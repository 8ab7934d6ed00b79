"""Evaluation: exact and sampled answer distributions of base models and adapters."""
