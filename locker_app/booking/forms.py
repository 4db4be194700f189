from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from locker_app.shared.fields import ClockField, DayField


class ReservationForm(FlaskForm):
    date = DayField(_l("Pickup day"), validators=[InputRequired(_l("Please choose a day."))])
    start = ClockField(_l("Pickup time"), validators=[InputRequired(_l("Please choose a time."))])
    end_date = DayField(_l("Return day"), validators=[InputRequired(_l("Please choose a day."))])
    end = ClockField(_l("Return time"), validators=[InputRequired(_l("Please choose a time."))])
    name = StringField(_l("Your name or a nickname"), validators=[
        InputRequired(_l("Please enter a name or nickname.")),
        Length(max=80, message=_l("Please use at most %(max)d characters."))],
        render_kw={"autocomplete": "name"})
    email = EmailField(_l("E-mail address (optional)"), validators=[
        Optional(), Length(max=254, message=_l("Please use at most %(max)d characters."))],
        render_kw={"autocomplete": "email"})
    # The booking's one-time key, made when the form is first shown: sent twice (a double
    # click, a reload, a retry after an error), it books once.
    booking_key = HiddenField()
    submit = SubmitField(_l("Reserve"))


class CancelForm(FlaskForm):
    submit = SubmitField(_l("Cancel reservation"))


class DefectForm(FlaskForm):
    message = TextAreaField(_l("What is wrong with it?"), validators=[
        InputRequired(_l("Please describe it in a few words.")),
        Length(max=2000, message=_l("Please use at most %(max)d characters."))],
        description=_l("For example: the brakes pull to the left."))
    submit = SubmitField(_l("Report the defect"))


class FeedbackForm(FlaskForm):
    message = TextAreaField(_l("Your message"), validators=[
        InputRequired(_l("Please write a few words.")),
        Length(max=2000, message=_l("Please use at most %(max)d characters."))],
        description=_l("Which page or step was hard to use, and what happened?"))
    contact = StringField(_l("How can we answer you? (optional)"), validators=[
        Optional(), Length(max=254, message=_l("Please use at most %(max)d characters."))],
        description=_l("An e-mail address or a phone number. It is deleted after 30 days."),
        render_kw={"autocomplete": "email"})
    submit = SubmitField(_l("Send"))


class FindByNumberForm(FlaskForm):
    number = StringField(_l("Your 8-digit number"), validators=[
        InputRequired(_l("Please enter the number.")),
        Length(max=20, message=_l("Please use at most %(max)d characters."))],
        render_kw={"inputmode": "numeric", "autocomplete": "off"})
    name = StringField(_l("The name you gave"), validators=[
        InputRequired(_l("Please enter the name.")),
        Length(max=80, message=_l("Please use at most %(max)d characters."))],
        render_kw={"autocomplete": "name"})
    submit = SubmitField(_l("Find the reservation"))


class FindByMailForm(FlaskForm):
    email = EmailField(_l("Your e-mail address"), validators=[
        InputRequired(_l("Please enter your e-mail address.")),
        Length(max=254, message=_l("Please use at most %(max)d characters."))],
        render_kw={"autocomplete": "email"})
    submit = SubmitField(_l("Send me the links"))
