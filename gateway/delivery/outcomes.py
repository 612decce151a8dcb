"""How every delivery outcome is classified: tables, not conditions scattered in the code.

Four tables: C-STORE response statuses (by range), which also classify the Failure Reason and
Warning Reason of each instance in a STOW-RS response (PS3.18 10.5.3: the same codes); failures
that happen before or instead of a status (by kind); HTTP statuses of a whole STOW-RS request;
and the failure reasons of a Storage Commitment report. Warnings count as
delivered (and are recorded); resource shortages and network trouble are worth retrying; a
peer that says the data set or SOP class is wrong will say so again, so those go to
dead-letter with the reason. Anything unknown is retried rather than lost: the give-up age
still dead-letters it eventually.
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
    # For failures without a status: does this failure say the destination itself is
    # unreachable (so it is probed with C-ECHO instead of being sent more items)?
    destination_down: bool = False


# Status ranges of C-STORE responses (PS3.4 B.2.3, GG.4.2; PS3.7 C). First match wins.
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
    Rule(0x0110, 0x0110, Outcome.RETRY, "processing failure"),
    Rule(0xA900, 0xA9FF, Outcome.PERMANENT, "error: data set does not match SOP class"),
    Rule(0xC000, 0xCFFF, Outcome.PERMANENT, "error: cannot understand"),
    Rule(0x0117, 0x0117, Outcome.PERMANENT, "invalid SOP instance"),
    Rule(0x0122, 0x0122, Outcome.PERMANENT, "refused: SOP class not supported"),
    Rule(0x0124, 0x0124, Outcome.PERMANENT, "refused: not authorised"),
    Rule(0x0211, 0x0211, Outcome.PERMANENT, "unrecognised operation"),
    Rule(0x0212, 0x0212, Outcome.PERMANENT, "mistyped argument"),
)

UNKNOWN = Rule(0x0000, 0xFFFF, Outcome.RETRY, "unknown status")
SUCCESS = STATUS_RULES[0]  # delivered without a warning


def classify_status(status: int) -> Rule:
    for rule in STATUS_RULES:
        if rule.low <= status <= rule.high:
            return rule
    return UNKNOWN


class Failure(enum.Enum):
    """What can go wrong around a C-STORE when the peer gives no status."""

    CONNECTION_FAILED = "connection_failed"      # refused, unreachable, TCP or TLS handshake failed
    ASSOCIATION_REJECTED = "association_rejected"
    ASSOCIATION_ABORTED = "association_aborted"  # A-ABORT or connection lost mid-association
    NO_RESPONSE = "no_response"                  # DIMSE timeout or invalid response
    CONTEXT_NOT_ACCEPTED = "context_not_accepted"  # the peer refused the SOP class / transfer syntax
    FILE_MISSING = "file_missing"
    UNSENDABLE = "unsendable"                    # cannot be converted to a syntax the peer accepts


FAILURE_RULES: dict[Failure, Rule] = {
    Failure.CONNECTION_FAILED: Rule(-1, -1, Outcome.RETRY, "connection failed", destination_down=True),
    Failure.ASSOCIATION_REJECTED: Rule(-1, -1, Outcome.RETRY, "association rejected", destination_down=True),
    Failure.ASSOCIATION_ABORTED: Rule(-1, -1, Outcome.RETRY, "association aborted", destination_down=True),
    Failure.NO_RESPONSE: Rule(-1, -1, Outcome.RETRY, "no response (timeout or invalid response)",
                              destination_down=True),
    Failure.CONTEXT_NOT_ACCEPTED: Rule(-1, -1, Outcome.PERMANENT,
                                       "SOP class or transfer syntax not accepted by the peer"),
    Failure.FILE_MISSING: Rule(-1, -1, Outcome.PERMANENT, "spool file missing or unreadable"),
    Failure.UNSENDABLE: Rule(-1, -1, Outcome.PERMANENT, "cannot be sent in a transfer syntax the peer accepts"),
}


def classify_failure(kind: Failure) -> Rule:
    return FAILURE_RULES[kind]


# HTTP statuses of a whole STOW-RS request (PS3.18 10.5.3, RFC 9110). A response that lists
# instances in its Referenced / Failed SOP Sequences is judged per instance instead (see
# ``gateway.delivery.stow``); these rules cover the instances it does not list, or all of them
# when it lists none. A server that refuses the request (authentication, a wrong URL, a body
# too large, a conflict) will refuse it again: dead-letter with the reason, ``queue
# retry-dead`` once it is fixed. A server in trouble (5xx) is down: retried, and probed.
HTTP_RULES: tuple[Rule, ...] = (
    Rule(200, 200, Outcome.DELIVERED, "stored"),
    Rule(202, 202, Outcome.RETRY, "accepted with failures, this instance not reported as stored"),
    Rule(201, 299, Outcome.DELIVERED, "stored"),
    Rule(300, 399, Outcome.PERMANENT, "redirected (set the destination's url to the new address)"),
    Rule(401, 401, Outcome.PERMANENT, "unauthorised (check the destination's auth)"),
    Rule(403, 403, Outcome.PERMANENT, "forbidden (check the destination's auth and the server's permissions)"),
    Rule(404, 405, Outcome.PERMANENT, "no STOW-RS service at this url"),
    Rule(408, 408, Outcome.RETRY, "request timeout"),
    Rule(409, 409, Outcome.PERMANENT, "conflict: the server stored none of the instances"),
    Rule(413, 413, Outcome.PERMANENT, "request too large (lower the destination's batch)"),
    Rule(415, 415, Outcome.PERMANENT, "unsupported media type"),
    Rule(429, 429, Outcome.RETRY, "too many requests"),
    Rule(400, 499, Outcome.PERMANENT, "request refused"),
    Rule(500, 599, Outcome.RETRY, "server error", destination_down=True),
)


def classify_http(status: int) -> Rule:
    for rule in HTTP_RULES:
        if rule.low <= status <= rule.high:
            return rule
    return UNKNOWN


# Failure Reason (0008,1197) in a Storage Commitment report (PS3.4 J.3.3.1.1.2 / C.14.1.1).
# Whatever the PACS could not commit is sent again, unless it says it never will take it.
COMMITMENT_FAILURE_RULES: dict[int, Rule] = {
    0x0110: Rule(0x0110, 0x0110, Outcome.RETRY, "processing failure"),
    0x0112: Rule(0x0112, 0x0112, Outcome.RETRY, "no such object instance"),
    0x0213: Rule(0x0213, 0x0213, Outcome.RETRY, "resource limitation"),
    0x0122: Rule(0x0122, 0x0122, Outcome.PERMANENT, "referenced SOP class not supported"),
    0x0119: Rule(0x0119, 0x0119, Outcome.PERMANENT, "class / instance conflict"),
    0x0131: Rule(0x0131, 0x0131, Outcome.RETRY, "duplicate transaction UID"),
}


def classify_commitment_failure(reason: int | None) -> Rule:
    if reason is not None and reason in COMMITMENT_FAILURE_RULES:
        return COMMITMENT_FAILURE_RULES[reason]
    return Rule(-1, -1, Outcome.RETRY, "commitment failure (unknown reason)")
