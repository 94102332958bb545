"""Forms of the user pages."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, ValidationError

from webapp import access

_ROLE_CHOICES = [(access.VIEWER, "Viewer: reads links and stats"),
                 (access.EDITOR, "Editor: also creates, disables and enables links"),
                 (access.ADMIN, "Admin: also manages users and everyone's tokens")]


class NewUserForm(FlaskForm):
    """Create a local account with a role."""

    username = StringField("User name", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    role = SelectField("Role", choices=_ROLE_CHOICES, default=access.VIEWER)
    # Checked by the view (counted like a sign-in): a stolen session must not add an admin it controls.
    confirm = PasswordField("Your password or a code from your app (to add an admin)")
    submit = SubmitField("Add user")

    def validate_username(self, field):
        """The same names the CLI accepts."""
        _check(access.check_username, field.data)

    def validate_password(self, field):
        """Long enough, hard to guess (the new user's name counts as easy), and not too long to hash."""
        try:
            access.check_password(field.data, [self.username.data])
        except ValueError as err:
            raise ValidationError(str(err)) from None


class RoleForm(FlaskForm):
    """Change a user's role."""

    role = SelectField("Role", choices=_ROLE_CHOICES)
    confirm = PasswordField("Your password or a code from your app (to make an admin)")
    submit = SubmitField("Change role")


def _check(rule, value):
    try:
        rule(value)
    except ValueError as err:
        raise ValidationError(str(err)) from None
