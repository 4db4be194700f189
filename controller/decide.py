"""Whether a scanned code opens a door: decided offline, from the code's signature and
window and from what this controller has synced or seen since. Pure: no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import signed_code
from controller.store import LocalReservation

# Server states after which a code opens nothing any more.
_REVOKED = {"cancelled": "cancelled", "no_show": "no_show", "returned": "returned"}
_OUT = ("picked_up", "overdue")


@dataclass(frozen=True)
class Decision:
    opens: bool
    reason: str
    reservation_id: int | None = None
    compartment: int | None = None
    purpose: str | None = None  # "pickup" or "return"


def decide(text: str, *, public_keys: dict, cabinet_id: int | None,
           lookup: Callable[[int], LocalReservation | None], now: datetime) -> Decision:
    """``lookup`` gives what this controller knows of a reservation id, if anything."""
    token = signed_code.extract_token(text)
    if token is None:
        return Decision(False, "not_a_code")
    if cabinet_id is None or not public_keys:
        return Decision(False, "not_synced")
    try:
        claims = signed_code.verify(token, public_keys)
    except signed_code.InvalidCode as error:
        return Decision(False, error.reason)
    refused = lambda reason: Decision(False, reason, claims.reservation_id, claims.compartment)  # noqa: E731
    if claims.cabinet_id != cabinet_id:
        return refused("other_cabinet")
    local = lookup(claims.reservation_id)
    compartment = local.compartment if local and local.compartment else claims.compartment
    states = {local.server_state, local.local_state} if local else set()
    for state, reason in _REVOKED.items():
        if state in states:
            return refused(reason)
    if states & set(_OUT):
        # Out with the visitor: the same code opens for the return at any time, late or not.
        return Decision(True, "return", claims.reservation_id, compartment, "return")
    if now < claims.valid_from:
        return refused("too_early")
    if now >= claims.valid_until:
        return refused("expired")
    return Decision(True, "pickup", claims.reservation_id, compartment, "pickup")
