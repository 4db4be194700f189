"""Whether a code opens a door: decided offline, from the QR code's signature and window,
or from the synced list of numeric codes, and from what this controller has synced or seen
since. Pure: no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import signed_code
from controller.store import LocalReservation

# States after which a code opens nothing any more.
_REVOKED = {"cancelled": "cancelled", "no_show": "no_show", "returned": "returned"}
_OUT = ("picked_up", "overdue")


@dataclass(frozen=True)
class Decision:
    opens: bool
    reason: str
    reservation_id: int | None = None
    compartment: int | None = None
    purpose: str | None = None  # "pickup" or "return"
    valid_from: datetime | None = None  # for "too_early": when the pickup may begin


def decide(text: str, *, public_keys: dict, cabinet_id: int | None,
           lookup: Callable[[int], LocalReservation | None], now: datetime,
           taken: Callable[[int, int, datetime], bool] | None = None) -> Decision:
    """A scanned QR code. ``lookup`` gives what this controller knows of a reservation id;
    ``taken(compartment, reservation_id, now)`` whether another reservation has the item now
    (without it, no early pickup)."""
    token = signed_code.extract_token(text)
    if token is None:
        return Decision(False, "not_a_code")
    if cabinet_id is None or not public_keys:
        return Decision(False, "not_synced")
    try:
        claims = signed_code.verify(token, public_keys)
    except signed_code.InvalidCode as error:
        return Decision(False, error.reason)
    if claims.cabinet_id != cabinet_id:
        return Decision(False, "other_cabinet", claims.reservation_id, claims.compartment)
    return judge(claims.reservation_id, claims.compartment, lookup(claims.reservation_id),
                 claims.valid_from, claims.valid_until, now, taken)


def decide_numeric(local: LocalReservation | None, now: datetime,
                   taken: Callable[[int, int, datetime], bool] | None = None) -> Decision:
    """A numeric code typed on the keypad, already found in the synced list (or not)."""
    if local is None or not local.valid_from or not local.valid_until or not local.compartment:
        return Decision(False, "unknown_code")
    return judge(local.id, local.compartment, local, _parse(local.valid_from),
                 _parse(local.valid_until), now, taken)


def judge(reservation_id: int, compartment: int, local: LocalReservation | None,
          valid_from: datetime, valid_until: datetime, now: datetime,
          taken: Callable[[int, int, datetime], bool] | None = None) -> Decision:
    if local and local.compartment:
        compartment = local.compartment  # a synced reassignment overrides the code
    states = {local.server_state, local.local_state} if local else set()
    for state, reason in _REVOKED.items():
        if state in states:
            return Decision(False, reason, reservation_id, compartment)
    if states & set(_OUT):
        # Out with the visitor: the same code opens for the return at any time, late or not.
        return Decision(True, "return", reservation_id, compartment, "return")
    if now < valid_from:
        # A little early (the item type's rule, synced): fine when nobody else has the item.
        early = _parse(local.early_from) if local and local.early_from else None
        if early is None or now < early or taken is None or taken(compartment, reservation_id, now):
            return Decision(False, "too_early", reservation_id, compartment,
                            valid_from=valid_from)
        return Decision(True, "early_pickup", reservation_id, compartment, "pickup")
    if now >= valid_until:
        return Decision(False, "expired", reservation_id, compartment)
    return Decision(True, "pickup", reservation_id, compartment, "pickup")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
