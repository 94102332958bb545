"""Forms of the link pages."""
from flask import current_app
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, StringField, SubmitField
from wtforms.validators import DataRequired, Optional, ValidationError

from webapp import link_rules, url_guard
from webapp.exceptions import InvalidLink


class IsoDateField(DateField):
    """A date picker that reads a typed date with the API's rule (link_rules.parse_date): every ISO 8601
    date spelling, 2030-01-01 or 20300101, is the same day, and so the same expiry."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        self.data = link_rules.parse_date(valuelist[0].strip())
        if self.data is None:
            raise ValueError(self.gettext("Not a valid date value."))


class LinkForm(FlaskForm):
    """Create a short link."""

    url = StringField("Destination URL", validators=[DataRequired(message="Enter the destination URL.")])
    slug = StringField("Custom slug (optional)")
    title = StringField("Title (optional)")
    expiry = RadioField(
        "Expires",
        choices=[("default", "In 30 days"), ("never", "Never"), ("date", "On a date")],
        default="default",
    )
    expiry_date = IsoDateField("Expiry date", validators=[Optional()])
    submit = SubmitField("Create short link")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        days = current_app.config["DEFAULT_EXPIRY_DAYS"]
        self.expiry.choices = [("default", f"In {days} days"), ("never", "Never"), ("date", "On a date")]
        self.expires_at = None

    def validate_url(self, field):
        """Normalise the destination to ASCII, refusing anything the rules forbid."""
        config = current_app.config
        field.data = _check(url_guard.normalise_url, field.data, config["SHORT_BASE_URL"], config["EXTRA_LOOP_HOSTS"])

    def validate_slug(self, field):
        """An empty slug means a random id; otherwise it must follow the slug rules."""
        field.data = (field.data or "").strip() or None
        if field.data:
            _check(link_rules.check_slug, field.data)

    def validate_title(self, field):
        """Titles are optional, short and on one line."""
        field.data = _check(link_rules.check_title, field.data)

    def validate_expiry(self, field):
        """Turn the expiry choice (and date) into the stored timestamp, or None for never."""
        if field.data == "never":
            self.expires_at = None
        elif field.data == "date":
            self.expires_at = _check(link_rules.expiry_from_date, self.expiry_date.data)
        else:
            self.expires_at = link_rules.default_expiry(days=current_app.config["DEFAULT_EXPIRY_DAYS"])


def _check(rule, *args):
    """Run a link rule, turning its human message into a form error."""
    try:
        return rule(*args)
    except InvalidLink as err:
        raise ValidationError(err.message) from None
