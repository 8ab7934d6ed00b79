"""Statistics: two-arm inference, the primary and secondary A/B analyses, text and distribution tests."""
