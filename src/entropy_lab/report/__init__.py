"""The report strand: numbers (gathered and recomputed), figures, Markdown, and `verify`."""
