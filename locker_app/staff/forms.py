"""Forms of the staff pages. Every one carries a CSRF token (Flask-WTF)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, EmailField, IntegerField, PasswordField, SelectField,
                     StringField, SubmitField, TelField, TextAreaField)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp

from wtforms import ValidationError
from wtforms.fields.choices import SelectChoice

from locker_app.shared.fields import ClockField, DayField
from locker_app.services.errors import DomainError

REQUIRED = _l("Please fill in this field.")


def options(pairs) -> list[SelectChoice]:
    """Choices of a select field as WTForms wants them (tuples are deprecated)."""
    return [SelectChoice(value, label) for value, label in pairs]


ROLES = options([("staff", _l("Staff (daily work)")), ("admin", _l("Administrator"))])


def required():
    return InputRequired(REQUIRED)


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[required(), Length(max=150)])
    submit = SubmitField(_l("Confirm"))


class ExtendForm(FlaskForm):
    end_date = DayField(_l("New return day"), validators=[InputRequired(_l("Please choose a day."))])
    end = ClockField(_l("New return time"), validators=[InputRequired(_l("Please choose a time."))])
    submit = SubmitField(_l("Extend"))


class OpenForm(FlaskForm):
    compartment = IntegerField(_l("Compartment"), validators=[required(), NumberRange(1, 999)])
    reason = StringField(_l("Reason"), validators=[required(), Length(max=150)])
    submit = SubmitField(_l("Open compartment"))


class AcknowledgeForm(FlaskForm):
    note = StringField(_l("Note (what you did)"), validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Acknowledge"))


class PhoneBookingForm(FlaskForm):
    site = SelectField(_l("Site"), coerce=int)
    item_type = SelectField(_l("Item"), coerce=int)
    date = DayField(_l("Pickup day"), validators=[InputRequired(_l("Please choose a day."))])
    start = ClockField(_l("Pickup time"), validators=[InputRequired(_l("Please choose a time."))])
    end_date = DayField(_l("Return day"), validators=[InputRequired(_l("Please choose a day."))])
    end = ClockField(_l("Return time"), validators=[InputRequired(_l("Please choose a time."))])
    name = StringField(_l("Caller's name"), validators=[required(), Length(max=80)],
                       render_kw={"autocomplete": "off"})
    phone = TelField(_l("Caller's phone number"), validators=[required(), Length(max=40)],
                     render_kw={"autocomplete": "off"})
    email = EmailField(_l("E-mail address (optional)"), validators=[Optional(), Length(max=254)],
                       render_kw={"autocomplete": "off"})
    submit = SubmitField(_l("Book"))


class ItemServiceForm(FlaskForm):
    reason = StringField(_l("Reason (e.g. brakes pull left)"), validators=[required(), Length(max=150)])
    submit = SubmitField(_l("Take out of service"))


class ItemForm(FlaskForm):
    label = StringField(_l("Label (painted on the item)"), validators=[required(), Length(max=80)])
    item_type = SelectField(_l("Item type"), coerce=int)
    compartment = SelectField(_l("Compartment"), coerce=int)
    notes = TextAreaField(_l("Notes on condition"), validators=[Optional(), Length(max=2000)])
    submit = SubmitField(_l("Save"))


SLUG = Regexp(r"^[a-z0-9][a-z0-9-]*$", message=_l("Lower-case letters, digits and dashes only."))


class SiteForm(FlaskForm):
    name = StringField(_l("Name"), validators=[required(), Length(max=120)])
    slug = StringField(_l("Short name in web addresses"), validators=[required(), Length(max=40), SLUG])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=200)])
    directions = StringField(_l("Where the cabinets stand"), validators=[Optional(), Length(max=300)])
    hotline = TelField(_l("Hotline number for visitors"), validators=[Optional(), Length(max=40)])
    on_duty_email = EmailField(_l("On-duty e-mail address for alerts"), validators=[
        Optional(), Length(max=254)])

    def validate_on_duty_email(self, field):
        from locker_app.services.people import clean_email
        try:
            field.data = clean_email(field.data)
        except DomainError as error:
            raise ValidationError(str(error)) from None
    submit = SubmitField(_l("Save"))


class HoursForm(FlaskForm):
    """Seven rows (Monday to Sunday) are added by the view."""
    submit = SubmitField(_l("Save opening hours"))


class SpecialDayForm(FlaskForm):
    day = DayField(_l("Date"), validators=[InputRequired(_l("Please choose a day."))])
    opens = ClockField(_l("Opens"), validators=[Optional()])
    closes = ClockField(_l("Closes"), validators=[Optional()])
    note = StringField(_l("Note (e.g. Christmas Eve)"), validators=[Optional(), Length(max=200)])
    submit = SubmitField(_l("Save special day"))


class CabinetForm(FlaskForm):
    site = SelectField(_l("Site"), coerce=int)
    name = StringField(_l("Name"), validators=[required(), Length(max=120)])
    location = StringField(_l("Location in the park"), validators=[Optional(), Length(max=300)])
    location_en = StringField(_l("Location in the park, in English (optional)"),
                              validators=[Optional(), Length(max=300)],
                              description=_l("Shown on the English pages; without it they "
                                             "show the German one."))
    board_family = SelectField(_l("Lock board family"), choices=options([
        ("A", _l("A (8A/80 boards, 9600 baud)")), ("B", _l("B (Kerong KR-CU16, 19200 baud)"))]))
    inverted_polarity = BooleanField(_l("Door sensors wired the other way round"))
    submit = SubmitField(_l("Save"))


class CompartmentForm(FlaskForm):
    number = IntegerField(_l("Number on the door"), validators=[required(), NumberRange(1, 999)])
    board_address = IntegerField(_l("Board address"), validators=[
        InputRequired(REQUIRED), NumberRange(0, 31)])
    lock_number = IntegerField(_l("Lock number on the board"), validators=[required(), NumberRange(1, 48)])
    item_sensor = BooleanField(_l("Has an item sensor"))
    submit = SubmitField(_l("Save"))


class ItemTypeForm(FlaskForm):
    code = StringField(_l("Short name in web addresses"), validators=[required(), Length(max=40), SLUG])
    name_de = StringField(_l("Name in German"), validators=[required(), Length(max=80)])
    plural_de = StringField(_l("Plural in German"), validators=[required(), Length(max=80)])
    name_en = StringField(_l("Name in English"), validators=[required(), Length(max=80)])
    plural_en = StringField(_l("Plural in English"), validators=[required(), Length(max=80)])
    description_de = TextAreaField(_l("Description in German"), validators=[Optional(), Length(max=2000)])
    description_en = TextAreaField(_l("Description in English"), validators=[Optional(), Length(max=2000)])
    submit = SubmitField(_l("Save"))


def _minutes(label):
    return IntegerField(label, validators=[InputRequired(REQUIRED), NumberRange(0, 525600)])


class RuleForm(FlaskForm):
    min_loan_minutes = _minutes(_l("Shortest loan (minutes)"))
    max_loan_minutes = _minutes(_l("Longest loan (minutes)"))
    max_days_ahead = IntegerField(_l("Bookable days ahead"), validators=[InputRequired(REQUIRED), NumberRange(0, 365)])
    lead_minutes = _minutes(_l("Book at least this many minutes before the pickup"))
    max_active_per_person = IntegerField(_l("Active reservations per person"), validators=[
        InputRequired(REQUIRED), NumberRange(1, 50)])
    chain_gap_minutes = _minutes(_l("Gap between two loans of one person (minutes)"))
    pickup_window_minutes = _minutes(_l("Pickup window (minutes)"))
    early_pickup_minutes = IntegerField(
        _l("Pickup allowed this many minutes early, when the item is free"),
        validators=[InputRequired(REQUIRED), NumberRange(0, 240)])
    submit = SubmitField(_l("Save rules"))


class AccountForm(FlaskForm):
    username = StringField(_l("User name"), validators=[required(), Length(max=80)],
                           render_kw={"autocomplete": "off", "autocapitalize": "none"})
    display_name = StringField(_l("Full name"), validators=[required(), Length(max=120)],
                               render_kw={"autocomplete": "off"})
    role = SelectField(_l("Role"), choices=ROLES)
    password = PasswordField(_l("First password (at least 12 characters)"), validators=[
        required(), Length(max=200)], render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Create account"))


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=ROLES)
    submit = SubmitField(_l("Change role"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password (at least 12 characters)"), validators=[
        required(), Length(max=200)], render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Set password"))


class ControllerForm(FlaskForm):
    name = StringField(_l("Name of the controller"), validators=[required(), Length(max=120)])
    submit = SubmitField(_l("Add controller"))


class HandledForm(FlaskForm):
    submit = SubmitField(_l("Done"))
