"""Views of the blocklist page (admins only)."""
from flask import flash, g, redirect, render_template, url_for

from webapp import abuse, access, audit
from webapp.auth import permission_required
from webapp.blocklist_pages import bp
from webapp.blocklist_pages.forms import RuleForm
from webapp.store import get_store
from webapp.store.blocklist import MAX_RULES, BlocklistFull, RuleExists, RuleNotFound


@bp.get("/settings/blocklist")
@permission_required(access.MANAGE_BLOCKLIST)
def index():
    """List the blocklist's rules, and the form to add one."""
    return _render_index(RuleForm())


@bp.post("/settings/blocklist")
@permission_required(access.MANAGE_BLOCKLIST)
def add():
    """Add a rule: new links to matching destinations are refused from now on."""
    form = RuleForm()
    if form.validate_on_submit():
        try:
            rule = get_store().blocklist.add(form.kind.data, form.value.data, created_by=g.user)
        except RuleExists:
            form.value.errors.append("The blocklist already has this rule.")
        except BlocklistFull:
            form.value.errors.append(f"The blocklist holds {MAX_RULES} rules, the most it can. Remove one first.")
        else:
            audit.record("blocklist.add", target=rule["id"], kind=rule["kind"], value=rule["value"])
            flash(f"Blocked {abuse.describe(rule)}. Existing links are not changed.", "success")
            return redirect(url_for("blocklist.index"), 303)
    return _render_index(form), 422


@bp.post("/settings/blocklist/<rule_id>/remove")
@permission_required(access.MANAGE_BLOCKLIST)
def remove(rule_id):
    """Remove a rule."""
    try:
        rule = get_store().blocklist.remove(rule_id)
    except RuleNotFound:
        flash("That rule was already removed.", "info")
        return redirect(url_for("blocklist.index"), 303)
    audit.record("blocklist.remove", target=rule_id, kind=rule["kind"], value=rule["value"])
    flash(f"Removed the rule {abuse.describe(rule)}.", "success")
    return redirect(url_for("blocklist.index"), 303)


def _render_index(form):
    return render_template("settings/blocklist.html", rules=get_store().blocklist.list(), form=form)
