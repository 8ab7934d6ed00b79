"""Seeding A/B experiments: uniform streams, the sampler, the design, embedders, text metrics."""
