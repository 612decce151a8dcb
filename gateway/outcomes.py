"""How every C-STORE outcome is classified: one table, not conditions scattered in the code.

Warnings count as delivered (and are recorded); resource shortages and network trouble are
worth retrying; a peer that says the data set or SOP class is wrong will say so again, so those
go to dead-letter with the reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Rule:
    low: int
    high: int
    outcome: Outcome
    meaning: str


# Status ranges of C-STORE responses (PS3.4 B.2.3, PS3.7 C). First match wins.
STATUS_RULES: tuple[Rule, ...] = (
    Rule(0x0000, 0x0000, Outcome.DELIVERED, "success"),
    Rule(0x0001, 0x0001, Outcome.DELIVERED, "warning: requested optional attributes not supported"),
    Rule(0x0107, 0x0107, Outcome.DELIVERED, "warning: attribute list error"),
    Rule(0x0116, 0x0116, Outcome.DELIVERED, "warning: attribute value out of range"),
    Rule(0xB000, 0xB000, Outcome.DELIVERED, "warning: coercion of data elements"),
    Rule(0xB006, 0xB006, Outcome.DELIVERED, "warning: elements discarded"),
    Rule(0xB007, 0xB007, Outcome.DELIVERED, "warning: data set does not match SOP class"),
    Rule(0xA700, 0xA7FF, Outcome.RETRY, "refused: out of resources"),
    Rule(0x0210, 0x0210, Outcome.RETRY, "duplicate invocation"),
    Rule(0x0213, 0x0213, Outcome.RETRY, "resource limitation"),
    Rule(0xA900, 0xA9FF, Outcome.PERMANENT, "error: data set does not match SOP class"),
    Rule(0xC000, 0xCFFF, Outcome.PERMANENT, "error: cannot understand"),
    Rule(0x0117, 0x0117, Outcome.PERMANENT, "invalid SOP instance"),
    Rule(0x0122, 0x0122, Outcome.PERMANENT, "refused: SOP class not supported"),
    Rule(0x0124, 0x0124, Outcome.PERMANENT, "refused: not authorised"),
    Rule(0x0211, 0x0211, Outcome.PERMANENT, "unrecognised operation"),
    Rule(0x0212, 0x0212, Outcome.PERMANENT, "mistyped argument"),
)

# Anything else the peer answers: an unknown failure is retried rather than lost; the give-up
# age still dead-letters it eventually.
UNKNOWN = Rule(0x0000, 0xFFFF, Outcome.RETRY, "unknown status")


def classify_status(status: int) -> Rule:
    for rule in STATUS_RULES:
        if rule.low <= status <= rule.high:
            return rule
    return UNKNOWN


# Failures that happen before or instead of a status.
NO_RESPONSE = Rule(-1, -1, Outcome.RETRY, "no response (timeout, abort or invalid response)")
ASSOCIATION_REJECTED = Rule(-1, -1, Outcome.RETRY, "association rejected")
ASSOCIATION_ABORTED = Rule(-1, -1, Outcome.RETRY, "association aborted")
CONNECTION_FAILED = Rule(-1, -1, Outcome.RETRY, "connection failed")
CONTEXT_NOT_ACCEPTED = Rule(-1, -1, Outcome.PERMANENT, "SOP class or transfer syntax not accepted by the peer")
FILE_MISSING = Rule(-1, -1, Outcome.PERMANENT, "spool file missing or unreadable")
