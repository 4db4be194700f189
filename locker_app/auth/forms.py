from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import EqualTo, InputRequired, Length


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[
        InputRequired(_l("Please enter your user name.")), Length(max=80)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"})
    password = PasswordField(_l("Password"), validators=[
        InputRequired(_l("Please enter your password.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"})
    submit = SubmitField(_l("Log in"))


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[InputRequired(_l("Please enter your current password."))],
                            render_kw={"autocomplete": "current-password"})
    password = PasswordField(_l("New password (at least 12 characters)"), validators=[
        InputRequired(_l("Please enter a new password.")), Length(max=200)],
        render_kw={"autocomplete": "new-password"})
    repeat = PasswordField(_l("New password again"), validators=[
        EqualTo("password", _l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Change password"))


class ConfirmForm(FlaskForm):
    """A button that changes something: a form for its CSRF token."""
    submit = SubmitField(_l("Confirm"))


class CodeForm(FlaskForm):
    code = StringField(_l("Six-digit code from your authenticator app"), validators=[
        InputRequired(_l("Please enter the code.")), Length(max=20)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField(_l("Confirm"))
