"""The admins' stats retention page, /settings/stats."""
from flask import flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import ValidationError

from webapp import access, audit
from webapp.auth import permission_required
from webapp.dashboard import bp, retention
from webapp.store import get_store


class RetentionForm(FlaskForm):
    """How many days of per-day stats to keep; empty keeps them forever."""

    days = StringField("Days of per-day stats to keep")
    submit = SubmitField("Save")

    def validate_days(self, field):
        """The retention as a number of days, or None for forever."""
        try:
            field.data = retention.parse_days(field.data)
        except ValueError as err:
            raise ValidationError(str(err)) from None


# Managing users is the admin's permission, as for the security settings: this one is about everyone's data.
@bp.route("/settings/stats", methods=["GET", "POST"])
@permission_required(access.MANAGE_USERS)
def stats_retention():
    """Show and change how many days of per-day stats (and rollups) to keep."""
    settings = get_store().settings
    current = retention.current_days(settings)
    form = RetentionForm(data={"days": "" if current is None else str(current)} if request.method == "GET" else None)
    if form.validate_on_submit():
        wanted = form.days.data
        if wanted != current:
            if wanted is None:
                settings.unset(retention.SETTING)
            else:
                settings.set(retention.SETTING, wanted, changed_by=g.user)
            audit.record("settings.change", target=retention.SETTING, value=wanted, previous=current)
        flash("Per-day stats are kept forever." if wanted is None else f"Per-day stats are kept for {wanted} days.", "success")
        return redirect(url_for("dashboard.stats_retention"), 303)
    return render_template("dashboard/retention.html", form=form, kept_days=current,
                           bounds=(retention.MIN_DAYS, retention.MAX_DAYS)), 422 if form.errors else 200
