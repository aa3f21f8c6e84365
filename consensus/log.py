"""The message log of the current view: one Slot per sequence number inside the watermarks."""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.messages import Commit, Prepare, PrePrepare


@dataclass(slots=True)
class Slot:
    """Everything known about one sequence number in the current view.

    Votes may arrive before the PRE-PREPARE; they are kept per replica (first one wins; a
    second, different vote from the same replica is counted as a conflict and dropped) and
    only those matching the pre-prepared digest count towards a quorum.
    """

    pre_prepare: PrePrepare | None = None
    validated: bool = False  # host accepted the proposal (or it is ours / from a NEW-VIEW)
    validation_requested: bool = False
    prepares: dict[str, Prepare] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    prepare_sent: bool = False
    commit_sent: bool = False
    prepared: bool = False
    committed: bool = False

    @property
    def digest(self) -> bytes | None:
        return None if self.pre_prepare is None else self.pre_prepare.digest

    def matching_prepares(self, primary: str) -> list[Prepare]:
        d = self.digest
        return [p for name, p in self.prepares.items() if p.digest == d and name != primary]

    def matching_commits(self) -> list[Commit]:
        d = self.digest
        return [c for c in self.commits.values() if c.digest == d]
