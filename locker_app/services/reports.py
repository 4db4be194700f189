"""What visitors tell staff: a defect on an item they borrowed, and feedback on the site
(the accessibility statement's form). Both land in the staff pages' *Rückmeldungen*."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from locker_app.models import Reservation, ReservationState as S, VisitorReport, utcnow
from locker_app.services.errors import DomainError
from locker_app.services.inventory import take_out_of_service

MAX_MESSAGE = 2000
MAX_DEFECTS_PER_RESERVATION = 3
# A defect can be reported while the item is out and until two days after the loan's end.
REPORT_AFTER_RETURN = timedelta(days=2)


def can_report_defect(reservation: Reservation, now: datetime | None = None) -> bool:
    now = now or utcnow()
    if reservation.state in (S.PICKED_UP, S.OVERDUE):
        return True
    return reservation.state == S.RETURNED and now < reservation.end_at + REPORT_AFTER_RETURN


def _clean(text: str | None, field: str, required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise DomainError(_l("Please describe it in a few words."), field)
    if len(text) > MAX_MESSAGE:
        raise DomainError(_l("Please keep it under %(n)d characters.", n=MAX_MESSAGE), field)
    return text


def report_defect(session: Session, reservation: Reservation, message: str, *,
                  source: str = "page", now: datetime | None = None,
                  commit: bool = True) -> VisitorReport:
    """The item is taken out of service with "check needed": not lent again until staff
    have looked at it (its later bookings move to a twin or are cancelled with a mail)."""
    now = now or utcnow()
    if not can_report_defect(reservation, now):
        raise DomainError(_l("A defect can be reported while you have the item and for two "
                             "days after the return. Please call us."))
    message = _clean(message, "message", required=source == "page") or \
        "(am Tastenfeld des Schranks gemeldet, ohne Text)"
    reported = session.scalar(select(func.count(VisitorReport.id)).where(
        VisitorReport.reservation_id == reservation.id, VisitorReport.kind == "defect"))
    if reported >= MAX_DEFECTS_PER_RESERVATION:
        raise DomainError(_l("This defect has reached us already. Thank you!"))
    report = VisitorReport(kind="defect", reservation=reservation, item=reservation.item,
                           message=message, page=source, created_at=now)
    session.add(report)
    item = reservation.item
    first = not item.check_needed
    item.check_needed = True
    item.service_reason = f"Defekt gemeldet: {message[:180]}"
    session.flush()
    if first and item.in_service:
        take_out_of_service(session, item, actor="visitor", reason="defect reported", now=now,
                            commit=commit)
    if commit:
        session.commit()
    return report


def leave_feedback(session: Session, message: str, contact: str | None, page: str | None) -> VisitorReport:
    report = VisitorReport(kind="feedback", message=_clean(message, "message"),
                           contact=_clean(contact, "contact", required=False)[:254] or None,
                           page=(page or "")[:200] or None)
    session.add(report)
    session.commit()
    return report


def open_reports(session: Session, handled: bool = False) -> list[VisitorReport]:
    condition = VisitorReport.handled_at.is_not(None) if handled else VisitorReport.handled_at.is_(None)
    return list(session.scalars(select(VisitorReport).where(condition)
                                .order_by(VisitorReport.created_at.desc()).limit(200)))


def count_open(session: Session) -> int:
    return session.scalar(select(func.count(VisitorReport.id))
                          .where(VisitorReport.handled_at.is_(None))) or 0


def mark_handled(session: Session, report: VisitorReport, who: str) -> bool:
    if report.handled_at is not None:
        return False
    report.handled_at, report.handled_by = utcnow(), who
    session.commit()
    return True


def erase_contacts(session: Session, now: datetime, after_days: int) -> int:
    """A feedback's contact goes ``after_days`` after it was sent, as the privacy page says."""
    result = session.execute(update(VisitorReport).where(
        VisitorReport.contact.is_not(None),
        VisitorReport.created_at <= now - timedelta(days=after_days)).values(contact=None))
    session.commit()
    return result.rowcount or 0
