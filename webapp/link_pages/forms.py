"""Forms of the link pages."""
from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, IntegerField, RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Optional, ValidationError

from webapp import link_edits, link_rules, url_guard
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


class _LinkFields(FlaskForm):
    """The fields that creating and editing share, each checked by the link rules."""

    url = StringField("Destination URL", validators=[DataRequired(message="Enter the destination URL.")])
    title = StringField("Title (optional)")
    tags = StringField("Tags (optional)")
    note = TextAreaField("Note (optional)")
    forward_query = BooleanField("Forward the short link's query string", default=True)
    expiry_date = IsoDateField("Expiry date", validators=[Optional()])
    expiry_days = IntegerField("Number of days", validators=[Optional()])

    def validate_url(self, field):
        """Normalise the destination to ASCII, refusing anything the rules forbid."""
        config = current_app.config
        field.data = _check(url_guard.normalise_url, field.data, config["SHORT_BASE_URL"], config["EXTRA_LOOP_HOSTS"])

    def validate_title(self, field):
        """Titles are optional, short and on one line."""
        field.data = _check(link_rules.check_title, field.data)

    def validate_tags(self, field):
        """Comma-separated labels, kept as a sorted list of distinct lowercase tags."""
        field.data = _check(link_rules.check_tags, field.data or "")

    def validate_note(self, field):
        """A note is optional, and may have line breaks."""
        field.data = _check(link_rules.check_note, field.data)

    def _chosen_expiry(self, choice):
        """The expiry timestamp for the choices both forms have (never, a date, N days)."""
        if choice == "never":
            return None
        if choice == "date":
            return _check(link_rules.expiry_from_date, self.expiry_date.data)
        if self.expiry_days.errors:
            raise ValidationError(f"Enter a whole number of days from 1 to {link_edits.EXPIRY_DAYS_MAX}.")
        return _check(link_edits.expiry_in_days, self.expiry_days.data)


class LinkForm(_LinkFields):
    """Create a short link."""

    slug = StringField("Custom slug (optional)")
    expiry = RadioField("Expires", default="default")
    submit = SubmitField("Create short link")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        days = current_app.config["DEFAULT_EXPIRY_DAYS"]
        self.expiry.choices = [("default", f"In {days} days"), ("never", "Never"), ("date", "On a date"),
                               ("days", "In a number of days")]
        self.expires_at = None

    def validate_slug(self, field):
        """An empty slug means a random id; otherwise it must follow the slug rules."""
        field.data = (field.data or "").strip() or None
        if field.data:
            _check(link_rules.check_slug, field.data)

    def validate_expiry(self, field):
        """Turn the expiry choice (and date or days) into the stored timestamp, or None for never."""
        if field.data == "default":
            self.expires_at = link_rules.default_expiry(days=current_app.config["DEFAULT_EXPIRY_DAYS"])
        else:
            self.expires_at = self._chosen_expiry(field.data)


class EditLinkForm(_LinkFields):
    """Edit a link; carries the version it was shown at, so a concurrent edit is never overwritten."""

    version = HiddenField()
    expiry = RadioField("Expires", default="keep",
                        choices=[("keep", "Keep as it is"), ("never", "Never"), ("date", "On a date"),
                                 ("days", "In a number of days")])
    submit = SubmitField("Save changes")

    def validate_version(self, field):
        """The version is a whole number this app rendered; anything else is a tampered form."""
        if not (field.data or "").isascii() or not (field.data or "").isdigit() or len(field.data) > 18:
            raise ValidationError("This form is damaged: reload the link's page and edit again.")

    def validate_expiry(self, field):
        """Checked here; read by changes() (keep leaves the expiry alone)."""
        if field.data != "keep":
            self._chosen_expiry(field.data)

    def changes(self):
        """{field: new value} for every field of the form. All of them, not those that differ from the link
        read by this request: that read may be a version behind (eventually consistent), and would then
        drop a change; the version check makes the store compare them with the version the form showed."""
        new = {"url": self.url.data, "title": self.title.data, "tags": self.tags.data, "note": self.note.data,
               "forward_query": bool(self.forward_query.data)}
        if self.expiry.data != "keep":
            new["expires_at"] = self._chosen_expiry(self.expiry.data)
        return new


def _check(rule, *args):
    """Run a link rule, turning its human message into a form error."""
    try:
        return rule(*args)
    except InvalidLink as err:
        raise ValidationError(err.message) from None
