"""Plain words for the pages and exports (the staff's, and a reservation's state on the
visitor's page). The database keeps codes (``unlock_sent``,
``{"purpose": "pickup"}``, ``booked online``); staff read them here as words in the page's
language. The codes stay where machines read them: the database, the API and a column of
the CSV. A code without words yet is shown with spaces for its underscores, never raw.

Issue 32: the reservation history showed ``unlock_sent`` and ``{"purpose": "pickup"}``,
the audit log ``item_retired``, statistics ``unknown_code``."""
from __future__ import annotations

import json
import re

from flask_babel import lazy_gettext as _l

ACTORS = {
    "visitor": _l("the visitor"),
    "staff": _l("staff"),
    "controller": _l("the locker"),
    "scheduler": _l("automatically"),
    "command line": _l("the command line"),
}

# What a locker observed and reported (controller events).
OBSERVATIONS = {
    "scan_refused": _l("Code refused"),
    "unlock_sent": _l("Door unlocked"),
    "unlock_unanswered": _l("Unlock not confirmed by the lock board"),
    "unlock_failed": _l("Unlocked, but the door did not open"),
    "door_opened": _l("Door opened"),
    "door_closed": _l("Door closed"),
    "door_forced": _l("Door opened without an unlock"),
    "door_left_open": _l("Door left open"),
    "pickup": _l("Picked up"),
    "return": _l("Returned"),
    "return_incomplete": _l("Door closed on an empty compartment"),
    "board_offline": _l("Lock board does not answer"),
    "board_online": _l("Lock board answers again"),
    "scanner_lost": _l("Scanner disconnected"),
    "scanner_back": _l("Scanner connected again"),
    "keypad_lost": _l("Keypad disconnected"),
    "keypad_back": _l("Keypad connected again"),
    "keypad_locked": _l("Keypad locked after wrong codes"),
    "server_unreachable": _l("Controller could not reach the server"),
    "server_back": _l("Controller reaches the server again"),
    "remote_refused": _l("Remote opening refused by the locker"),
    "config_mismatch": _l("Controller settings disagree with the cabinet"),
    "defect_reported": _l("Defect reported at the keypad"),
    "anomaly": _l("The locker reported something that does not fit"),
    "cabinet_silent": _l("Cabinet not heard from"),
    "cabinet_back": _l("Cabinet heard from again"),
}

# Why a code opened nothing, and why a locker refused a remote opening.
REASONS = {
    "unknown_code": _l("unknown code"),
    "not_a_code": _l("not a code of ours"),
    "not_readable": _l("could not be read"),
    "not_synced": _l("not yet known to the locker"),
    "other_cabinet": _l("booked at another cabinet"),
    "too_early": _l("too early"),
    "early_pickup": _l("a little early, allowed"),
    "picked_up": _l("already picked up"),
    "no_show": _l("not picked up in time"),
    "cancelled": _l("cancelled"),
    "returned": _l("already returned"),
    "expired": _l("expired"),
    "stale": _l("too old when it arrived"),
    "unknown_compartment": _l("no such compartment"),
}

PURPOSES = {"pickup": _l("to pick up"), "return": _l("to return"),
            "remote": _l("opened from afar by staff")}
SOURCES = {"scanner": _l("scanner"), "keypad": _l("keypad")}
SETTINGS = {"board_family": _l("lock board family")}
ROLES = {"staff": _l("Staff (daily work)"), "admin": _l("Administrator")}

# The names of the values staff saved (audit log details), as the forms call them.
KEYS = {
    "reason": _l("Reason"), "name": _l("Name"), "note": _l("Note"), "role": _l("Role"),
    "rows": _l("rows"), "session": _l("session"), "day": _l("day"),
    "family": _l("lock board family"), "lock": _l("lock"), "type": _l("item type"),
    "compartment": _l("Compartment"), "hours": _l("Opening hours"),
    "inverted_polarity": _l("Door sensors wired the other way round"),
    "item_sensor": _l("item sensor"), "moved": _l("moved"), "cancelled": _l("cancelled"),
    "min_loan_minutes": _l("Shortest loan (minutes)"),
    "max_loan_minutes": _l("Longest loan (minutes)"),
    "max_days_ahead": _l("Bookable days ahead"),
    "lead_minutes": _l("Book at least this many minutes before the pickup"),
    "max_active_per_person": _l("Active reservations per person"),
    "chain_gap_minutes": _l("Gap between two loans of one person (minutes)"),
    "pickup_window_minutes": _l("Pickup window (minutes)"),
    "early_pickup_minutes": _l("Pickup allowed this many minutes early, when the item is free"),
}
YES, NO, CLOSED = _l("yes"), _l("no"), _l("closed")
WEEKDAYS = [_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
            _l("Saturday"), _l("Sunday")]

MAIL_KINDS = {
    "confirmation": _l("Confirmation"),
    "links": _l("Links to the reservations"),
    "reminder": _l("Reminder"),
    "cancelled_by_staff": _l("Cancelled by staff"),
    "alert": _l("Alert to the on-duty address"),
}

AUDIT_ACTIONS = {
    "account_created": _l("Account created"),
    "account_enabled": _l("Account enabled"),
    "account_disabled": _l("Account disabled"),
    "account_logged_out_everywhere": _l("Logged out everywhere"),
    "account_password_reset": _l("Password reset"),
    "account_role": _l("Role changed"),
    "account_two_factor_off": _l("Second factor switched off by an administrator"),
    "alert_acknowledged": _l("Alert acknowledged"),
    "booked_for_caller": _l("Booked for a caller"),
    "cabinet_retired": _l("Cabinet retired"),
    "cabinet_reactivated": _l("Cabinet back in use"),
    "cabinet_saved": _l("Cabinet saved"),
    "compartment_saved": _l("Compartment saved"),
    "controller_added": _l("Controller added"),
    "controller_retired": _l("Controller retired"),
    "controller_token_rotated": _l("Controller token renewed"),
    "export_reservations": _l("Reservations exported"),
    "item_out_of_service": _l("Item taken out of service"),
    "item_released": _l("Item released after a check"),
    "item_back_in_service": _l("Item back in service"),
    "item_retired": _l("Item retired"),
    "item_saved": _l("Item saved"),
    "item_type_retired": _l("Item type no longer offered"),
    "item_type_reactivated": _l("Item type offered again"),
    "item_type_saved": _l("Item type saved"),
    "opening_hours_saved": _l("Opening hours saved"),
    "password_changed": _l("Own password changed"),
    "remote_open": _l("Compartment opened from afar"),
    "report_handled": _l("Visitor report marked as done"),
    "rules_saved": _l("Booking rules saved"),
    "session_ended": _l("Session ended"),
    "site_retired": _l("Site retired"),
    "site_reactivated": _l("Site back in use"),
    "site_saved": _l("Site saved"),
    "special_day_removed": _l("Special day removed"),
    "special_day_saved": _l("Special day saved"),
    "two_factor_off": _l("Own second factor switched off"),
    "two_factor_on": _l("Own second factor switched on"),
    "reservation_cancelled": _l("Reservation cancelled"),
    "reservation_extended": _l("Loan extended"),
    "reservation_returned": _l("Marked as returned"),
}

# The causes the code writes (services/*.py), as patterns with their words. What staff
# typed (a reason) is carried over as it is.
CAUSES = [
    (re.compile(r"booked online$"), lambda m: _l("booked online")),
    (re.compile(r"booked by (?P<who>.+)$"), lambda m: _l("booked by %(who)s", who=_who(m["who"]))),
    (re.compile(r"booked on the phone by (?P<who>.+)$"),
     lambda m: _l("booked on the phone by %(who)s", who=m["who"])),
    (re.compile(r"picked up at compartment (?P<n>\d+)$"),
     lambda m: _l("picked up at compartment %(n)s", n=m["n"])),
    (re.compile(r"returned to compartment (?P<n>\d+)$"),
     lambda m: _l("returned to compartment %(n)s", n=m["n"])),
    (re.compile(r"pickup window passed$"), lambda m: _l("not picked up in time")),
    (re.compile(r"return time passed$"), lambda m: _l("not returned in time")),
    (re.compile(r"cancelled by (the )?visitor$"), lambda m: _l("cancelled by the visitor")),
    (re.compile(r"cancelled by (?P<who>[^:]+): (?P<why>.*)$", re.S),
     lambda m: _l("cancelled by %(who)s: %(why)s", who=_who(m["who"]), why=_given(m["why"]))),
    (re.compile(r"marked returned by (?P<who>[^:]+): (?P<why>.*)$", re.S),
     lambda m: _l("marked as returned by %(who)s: %(why)s", who=_who(m["who"]),
                  why=_given(m["why"]))),
    (re.compile(r"extended by (?P<who>.+) from (?P<at>[\d-]+ [\d:]+) UTC$"),
     lambda m: _l("extended by %(who)s", who=m["who"])),
    (re.compile(r"moved to compartment (?P<n>\d+): (?P<rest>.*)$", re.S),
     lambda m: _l("moved to compartment %(n)s: %(why)s", n=m["n"], why=_given_tail(m["rest"]))),
    (re.compile(r"item (?P<rest>.*); no other free$", re.S),
     lambda m: _l("cancelled, no other item free: %(why)s", why=_given_tail(m["rest"]))),
]

# Anomalies the server records when a locker's report does not fit what it knows.
PROBLEMS = [
    (re.compile(r"compartment (?P<n>\d+) is not in this cabinet$"),
     lambda m: _l("compartment %(n)s is not in this cabinet", n=m["n"])),
    (re.compile(r"occurred_at lies in the future$"),
     lambda m: _l("its time lies in the future (the locker's clock?)")),
    (re.compile(r"occurred_at lies before the reservation existed$"),
     lambda m: _l("its time lies before the reservation was made")),
    (re.compile(r"(?P<kind>\w+) at compartment (?P<n>\d+), but the reservation is in "
                r"compartment (?P<m>\d+)$"),
     lambda m: _l("%(what)s at compartment %(n)s, but the reservation is for compartment "
                  "%(m)s", what=observation(m["kind"]), n=m["n"], m=m["m"])),
    (re.compile(r"(?P<kind>\w+) of a reservation that is (?P<state>\w+)$"),
     lambda m: _l("%(what)s of a reservation that is %(state)s",
                  what=observation(m["kind"]), state=state(m["state"]))),
]

STATES = {
    "booked": _l("Reserved"), "picked_up": _l("Picked up"), "returned": _l("Returned"),
    "cancelled": _l("Cancelled"), "no_show": _l("Not picked up"), "overdue": _l("Overdue"),
}


# Reasons the code itself gives (services/reports.py, inventory.py); what staff typed stays.
GIVEN_REASONS = {"defect reported": _l("defect reported")}


def _given(text: str) -> str:
    return str(GIVEN_REASONS.get(text.strip(), text))


def _given_tail(text: str) -> str:
    """"<item label> <reason>": the reason at the end in words when the code gave it."""
    for given, words in GIVEN_REASONS.items():
        if text.endswith(" " + given):
            return f"{text[:-len(given)]}{words}"
    return text


def _plain(code: str | None) -> str:
    """A code without words of its own: at least no underscores."""
    return (code or "").replace("_", " ")


def _who(code: str) -> str:
    return str(ACTORS.get(code, code))


def _word(words: dict, code: str | None) -> str:
    """The words for a code in the page's language; a code without any, plainly."""
    return str(words.get(code or "", _plain(code)))


def actor(code: str | None) -> str:
    return _word(ACTORS, code)


def observation(kind: str | None) -> str:
    return _word(OBSERVATIONS, kind)


def reason(code: str | None) -> str:
    return _word(REASONS, code)


def mail_kind(kind: str | None) -> str:
    return _word(MAIL_KINDS, kind)


def audit_action(action: str | None) -> str:
    return _word(AUDIT_ACTIONS, action)


def state(code: str | None) -> str:
    return _word(STATES, code)


def _by_pattern(patterns, text: str | None) -> str:
    text = (text or "").strip()
    for pattern, words in patterns:
        found = pattern.match(text)
        if found:
            return str(words(found))
    return text


def cause(text: str | None) -> str:
    """Why a reservation changed, as the code wrote it, in the page's language."""
    return _by_pattern(CAUSES, text)


def detail(raw) -> str:
    """An event's or audit entry's details (JSON) as words: "to pick up; scanner". Ids
    that only machines follow (a command's, a request's) are left out."""
    if raw in (None, "", "{}"):
        return ""
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return str(raw)
    if not isinstance(values, dict):
        return str(values)
    parts = []
    for key, value in values.items():
        said = _detail_part(key, value)
        if said:
            parts.append(said)
    return "; ".join(parts)


def _detail_part(key: str, value) -> str | None:
    if key in ("command_id", "request_id", "event", "command", "uuid") or value in (None, ""):
        return None
    if key == "purpose":
        return _word(PURPOSES, value)
    if key == "reason" and isinstance(value, str) and value in REASONS:
        return str(REASONS[value])  # a code; a reason staff typed is shown as typed below
    if key == "source":
        return _word(SOURCES, value)
    if key == "problem":
        return _by_pattern(PROBLEMS, value)
    if key == "kind":
        return observation(value)
    if key == "seconds":
        return str(_l("%(n)d seconds", n=round(float(value))))
    if key == "lockouts":
        return str(_l("locked %(n)d times so far", n=int(value)))
    if key == "board":
        return str(_l("lock board %(n)s", n=value))
    if key == "already_open":
        return str(_l("it was already open")) if value else None
    if key == "unseen":
        return str(_l("without an item sensor"))
    if key == "item_present":
        return str(_l("item inside")) if value else str(_l("compartment empty"))
    if key == "suppressed_before":
        return str(_l("%(n)d more not listed before", n=int(value)))
    if key == "setting":
        return _word(SETTINGS, value)
    if key == "controller":
        return str(_l("controller: %(value)s", value=value))
    if key == "cabinet":
        return str(_l("cabinet: %(value)s", value=value))
    if key == "error":
        return str(_l("error: %(text)s", text=value))
    if key == "why":
        return _plain(str(value))
    if key == "for":  # a remote opening: for a reservation, or for service
        number = re.fullmatch(r"reservation (\d+)", str(value))
        return str(_l("for reservation %(n)s", n=number[1]) if number else _l("for service"))
    if key == "role":
        return f"{KEYS['role']}: {_word(ROLES, str(value))}"
    if key.isdigit() and int(key) < 7:  # opening hours by weekday
        return f"{WEEKDAYS[int(key)]}: {value or CLOSED}"
    if isinstance(value, bool):
        return f"{_label(key)}: {YES if value else NO}"
    if isinstance(value, list):
        return f"{_label(key)}: {', '.join(map(str, value)) or '–'}"
    if isinstance(value, dict):
        return f"{_label(key)}: {detail(value)}"
    return f"{_label(key)}: {value}"


def _label(key: str) -> str:
    return _word(KEYS, key)


def register(app) -> None:
    """The words as template globals for every page (the staff pages use them)."""
    app.jinja_env.globals.update(
        actor_words=actor, observation_words=observation, reason_words=reason,
        mail_words=mail_kind, action_words=audit_action, cause_words=cause,
        detail_words=detail, state_words=state)
