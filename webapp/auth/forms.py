"""Forms of the auth blueprint."""
from flask import g
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from webapp import access


class LoginForm(FlaskForm):
    """Sign in with a local account."""

    username = StringField("User name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Sign in")


class PasswordForm(FlaskForm):
    """Change one's own password; the current one proves it is really them."""

    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    new = PasswordField("New password", validators=[DataRequired()])
    confirm = PasswordField("New password again", validators=[DataRequired(), EqualTo("new", "The two new passwords differ.")])
    submit = SubmitField("Change password")

    def validate_new(self, field):
        """Long enough, hard to guess (the user's own name counts as easy), and not too long to hash."""
        try:
            access.check_password(field.data, [g.get("user")])  # this form is for signed-in users only
        except ValueError as err:
            raise ValidationError(str(err)) from None
