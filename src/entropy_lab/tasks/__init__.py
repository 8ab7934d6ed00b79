"""Procedural randomness tasks with exact target distributions.

One class per family behind the `Family` interface (tasks.base), grouped in one module per
category: basic, combinatorial, game, statistical, contextual; `tasks.families` is the
registry. Their params live in `tasks.params`, so reading params imports no family code.
"""
