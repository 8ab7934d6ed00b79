"""Seeding A/B experiments: uniform streams, the sampler, the design, text metrics."""
