"""Forms of the token pages."""
from flask import g
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp import access


class TokenForm(FlaskForm):
    """Create an API token for oneself."""

    name = StringField("Name", validators=[DataRequired(message="Say what the token is for."), Length(max=100)])
    scope = SelectField("Scope", choices=[(access.READ, "read: list and read links and stats"),
                                          (access.WRITE, "write: also create, disable and enable links")],
                        default=access.READ)
    days = IntegerField("Expires after (days)", default=access.TOKEN_DEFAULT_DAYS)
    # Checked by the view (rate-limited like a sign-in): a write token outlives the session that made it.
    password = PasswordField("Your password (for a write token)")
    submit = SubmitField("Create token")

    def validate_scope(self, field):
        """Never wider than the owner's role."""
        try:
            access.check_scope(field.data, g.role)
        except ValueError as err:
            raise ValidationError(str(err)) from None

    def validate_days(self, field):
        """A whole number of days within the maximum (the store applies the shorter single sign-on limit)."""
        try:
            access.check_token_days(field.data)
        except ValueError as err:
            raise ValidationError(str(err)) from None
