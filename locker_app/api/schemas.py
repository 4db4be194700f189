"""The public API's models: what it takes and answers, from which spectree writes the
OpenAPI 3.1 description (api/public.py)."""
from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

# The longest period the availability answers for at once.
MAX_AVAILABILITY_DAYS = 31


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Error(Strict):
    error: str = Field(description="What went wrong, in plain words (German or English).")
    code: str = Field(description="Stable: invalid, unknown_site, unknown_item_type, sold_out, "
                      "refused, not_found, not_cancellable, rate_limited, bad_request, internal.")
    field: str | None = Field(None, description="The request field concerned, if one is.")


class Rules(Strict):
    summary: str = Field(description="The rules in one sentence.")
    min_loan_minutes: int
    max_loan_minutes: int
    max_days_ahead: int
    lead_minutes: int = Field(description="How long before the pickup a booking must be made.")
    max_active_per_person: int
    pickup_window_minutes: int = Field(description="How long after the start the item waits.")
    early_pickup_minutes: int = Field(description="How much earlier it may be picked up when "
                                      "the compartment is free.")


class ItemTypeOut(Strict):
    code: str
    name: str
    plural: str
    description: str | None = None
    items: int = Field(description="How many are in service at the site.")
    free_now: int = Field(description="How many are free right now.")
    rules: Rules


class SiteOut(Strict):
    slug: str
    name: str
    address: str | None = None
    directions: str | None = None
    hotline: str | None = None
    item_types: list[str]


class SitesOut(Strict):
    sites: list[SiteOut]


class ItemTypesOut(Strict):
    site: str
    item_types: list[ItemTypeOut]


class AvailabilityQuery(Strict):
    model_config = ConfigDict(populate_by_name=True)
    from_: date | None = Field(None, alias="from", description="First day (default today).")
    to: date | None = Field(None, description=f"Last day (default from + 6; at most "
                            f"{MAX_AVAILABILITY_DAYS} days).")
    item_type: str | None = Field(None, max_length=40, description="Only this item type.")


class FreeRange(Strict):
    start: datetime
    end: datetime


class Day(Strict):
    date: date
    open: bool
    free: list[FreeRange] = Field(description="Stretches in which at least one is free.")


class TypeAvailability(Strict):
    item_type: str
    days: list[Day]


class AvailabilityOut(Strict):
    site: str
    timezone: str
    item_types: list[TypeAvailability]


class ReservationIn(Strict):
    site: str = Field(max_length=200, description="The site's slug.")
    item_type: str = Field(max_length=200, description="The item type's code.")
    start: str = Field(max_length=200, description="ISO 8601, e.g. 2026-06-10T10:30.")
    end: str = Field(max_length=200, description="ISO 8601, e.g. 2026-06-10T12:30.")
    name: str = Field(max_length=1000, description="A name or nickname, said at the locker.")
    email: str | None = Field(None, max_length=1000,
                              description="For the confirmation and reminders; optional.")


class CabinetOut(Strict):
    name: str
    location: str | None = None


class ReservationOut(Strict):
    id: int
    state: str = Field(description="booked, picked_up, overdue, returned, cancelled, no_show")
    code: str = Field(description="The signed code in the QR code; keep it to look up or cancel.")
    numeric_code: str | None = Field(None, description="8 digits to type at the locker's keypad.")
    url: str = Field(description="The reservation's page with its QR code.")
    qr_svg_url: str
    site: str
    item_type: str
    compartment: int
    cabinet: CabinetOut
    start: datetime
    end: datetime
    pickup_until: datetime
    can_cancel: bool
    rules: Rules


ERRORS = {"HTTP_400": Error, "HTTP_404": Error, "HTTP_422": Error, "HTTP_429": Error}
