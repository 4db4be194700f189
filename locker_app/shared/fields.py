"""Form fields the visitor's form and the staff's forms share."""
from flask_babel import lazy_gettext as _l
from wtforms import DateField, TimeField


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
