"""Forms of the blocklist page."""
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import ValidationError

from webapp import abuse


class RuleForm(FlaskForm):
    """Add a blocklist rule: a domain (with its subdomains) or a URL pattern."""

    kind = SelectField("Kind", choices=[(abuse.DOMAIN, "Domain, with its subdomains"),
                                        (abuse.PATTERN, "URL pattern (* any text, ? one character)")])
    value = StringField("Domain or pattern")
    submit = SubmitField("Add rule")

    def validate_value(self, field):
        """The rule in the form it is stored and compared (a domain in punycode, a pattern in lowercase)."""
        try:
            field.data = abuse.check_rule(self.kind.data, field.data)
        except ValueError as err:
            raise ValidationError(str(err)) from None
