"""The complete rule table: node/ledger/rules.py's kinds plus the governance kinds."""

from __future__ import annotations

from node.ledger.governance import GOVERNANCE_RULES
from node.ledger.rules import RULES, Rule
from node.tx import kinds as k

ALL_RULES: dict[k.Kind, Rule] = {**RULES, **GOVERNANCE_RULES}
assert set(ALL_RULES) == set(k.Kind), "every kind needs a rule"

# Dispatch on the args class: a type hashes in C, an Enum member hashes in Python.
RULES_BY_ARGS: dict[type[k.Args], Rule] = {
    k.ARGS_BY_KIND[kind]: rule for kind, rule in ALL_RULES.items()
}
