"""Harvest: entropy sources, health tests, SP 800-90B and SP 800-22 assessment, the pool."""
