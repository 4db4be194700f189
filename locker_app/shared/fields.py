"""Form fields, the window a form chose and how a refusal is shown in a form: what the
visitor's form and the staff's forms share."""
from flask_babel import lazy_gettext as _l
from wtforms import DateField, TimeField

from locker_app.services.timeutil import local_to_utc


class _PlainMessageMixin:
    """Date and time fields whose parse error is our own plain sentence."""

    parse_message = None

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(str(self.parse_message)) from None


class DayField(_PlainMessageMixin, DateField):
    parse_message = _l("Please choose a day.")


class ClockField(_PlainMessageMixin, TimeField):
    parse_message = _l("Please choose a time.")


def show_error(form, error) -> None:
    """A refusal (a DomainError) next to the field it concerns, else above the form; once,
    however often it is found."""
    field = getattr(form, error.field, None) if error.field else None
    errors = field.errors if field is not None and hasattr(field, "errors") else None
    if errors is None:
        if str(error) not in form.form_errors:
            form.form_errors.append(str(error))
    elif str(error) not in errors:
        field.errors = list(errors) + [str(error)]


def chosen_window(form):
    """The pickup and the return a form chose (its fields date, start, end_date, end) as
    naive UTC; a year out of range is shown at its day, a time the clocks skip at its time."""
    return (local_to_utc(form.date.data, form.start.data, field="start", day_field="date"),
            local_to_utc(form.end_date.data, form.end.data, field="end", day_field="end_date"))
