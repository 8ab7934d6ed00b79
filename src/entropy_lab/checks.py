"""What a check of claims found: what held, what did not, and what could not be checked here."""

from __future__ import annotations

from dataclasses import dataclass, field

NOTHING_CHECKED = 3  # exit code: no claim could be checked here


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)  # checked, and does not hold
    checked: list[str] = field(default_factory=list)  # what was recomputed or compared
    unchecked: list[str] = field(default_factory=list)  # not checked here, and what it needs

    def add(self, other: Verification) -> None:
        self.problems += other.problems
        self.checked += other.checked
        self.unchecked += other.unchecked

    @property
    def exit_code(self) -> int:
        if self.problems:
            return 1
        return 0 if self.checked else NOTHING_CHECKED
