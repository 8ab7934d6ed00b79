"""Statistics: two-arm inference and the A/B analysis."""
