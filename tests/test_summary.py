"""The README and docs/experiments.md quote only committed artefacts: their generated blocks
are what `python -m entropy_lab.report.summary` makes of reports/metrics.json, the run records
and the experiment records today."""

from __future__ import annotations

import pytest

from entropy_lab.report import summary
from tests.conftest import REPO


def test_generated_pages_match_the_committed_artefacts():
    for page, text in summary.render(REPO).items():
        assert (REPO / page).read_text() == text, (
            f"{page} drifted from the artefacts: run `python -m entropy_lab.report.summary`"
        )


def test_a_block_is_replaced_between_its_markers_only():
    text = "a\n<!-- generated:x -->\nold\n<!-- /generated:x -->\nb\n"
    assert (
        summary.block(text, "x", "new\n")
        == "a\n<!-- generated:x -->\nnew\n<!-- /generated:x -->\nb\n"
    )
    with pytest.raises(ValueError, match="no <!-- generated:y -->"):
        summary.block(text, "y", "")
