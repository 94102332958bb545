"""Views of the link pages."""
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from webapp import abuse, access, clock, csv_export, link_edits, stats
from webapp.auth import permission_required
from webapp.exceptions import InvalidCursor, SlugTaken, VersionConflict
from webapp.link_pages import bp, stats_view
from webapp.link_pages.forms import EditLinkForm, LinkForm
from webapp.store import get_store, link_search

bp.add_app_template_filter(link_edits.days_left, "days_left")  # the list's "expires in 3 days" flag


@bp.get("/")
@permission_required(access.READ_LINKS)
def index():
    """List links, newest first, one page at a time; searched and filtered by the GET form (q, tag, status, mine, sort)."""
    cursor = request.args.get("cursor") or None
    shown = {"cursor": cursor, "filters": _filters(), "statuses": link_search.STATUSES, "error": None}
    try:
        query = link_search.parse_query(request.args, g.user)
    except link_search.InvalidQuery as err:  # shown next to its field, with no links
        return render_template("links/index.html", links=[], next_cursor=None, **dict(shown, error=err)), 422
    try:
        page, next_cursor = get_store().link_search.find(query, current_app.config["PAGE_SIZE"], cursor)
    except InvalidCursor:
        abort(400, "That page link is not valid. Start again from the first page.")
    return render_template("links/index.html", links=page, next_cursor=next_cursor, **shown)


@bp.get("/links/export.csv")
@permission_required(access.READ_LINKS)
def export_csv():
    """Download the links as CSV, newest first, filtered as the list was (q, tag, status, mine)."""
    try:
        query = link_search.parse_query(request.args, g.user)
    except link_search.InvalidQuery as err:
        abort(422, err.message)
    return csv_export.csv_response(query)


def _filters():
    """The list's search and filter arguments as given, for the export link and the pager."""
    return {name: request.args[name] for name in ("q", "tag", "status", "mine", "sort") if request.args.get(name)}


@bp.route("/links/new", methods=["GET", "POST"])
@permission_required(access.WRITE_LINKS)
def new():
    """Show the create form and create a link."""
    form = LinkForm()
    if form.validate_on_submit():
        try:
            reserved = abuse.admit_creation(form.url.data, g.user)
            link = get_store().links.create(
                form.url.data,
                created_by=g.user,
                slug=form.slug.data,
                title=form.title.data,
                expires_at=form.expires_at,
                id_length=current_app.config["ID_LENGTH"],
                tags=form.tags.data,
                note=form.note.data,
                forward_query=bool(form.forward_query.data),
            )
        except abuse.DestinationRefused as err:
            form.url.errors.append(err.message)
            return render_template("links/new.html", form=form), err.status
        except abuse.CreationLimited as err:
            flash(err.message, "error")
            return render_template("links/new.html", form=form), 429, {"Retry-After": str(err.retry_after)}
        except SlugTaken:
            abuse.release_creation(g.user, start=reserved)
            form.slug.errors.append("That custom slug is already taken. Choose another one.")
        else:
            link_edits.record_create(link)
            flash("Short link created.", "success")
            return redirect(url_for("links.detail", short_id=link["id"]), 303)
    status = 422 if form.errors else 200
    return render_template("links/new.html", form=form), status


@bp.get("/links/<short_id>")
@permission_required(access.READ_LINKS)
def detail(short_id):
    """Show one link with its short URL ready to copy, its clicks (?days=7|30|90 or ?hours=48) and its trail."""
    link = get_store().links.get(short_id)
    days, hours = stats_view.choice()
    trail_cursor = request.args.get("trail") or None
    try:
        trail, next_trail = link_edits.trail(link, cursor=trail_cursor)
    except InvalidCursor:
        abort(400, "That page of the link's history is not valid. Start again from the link's page.")
    return render_template("links/detail.html", link=link, stats=stats_view.build(short_id, days, hours),
                           windows=stats_view.windows(),
                           trail=[link_edits.trail_entry(record) for record in trail],
                           trail_cursor=trail_cursor, next_trail=next_trail)


@bp.get("/links/<short_id>/stats/live")
@permission_required(access.READ_LINKS)
def stats_live(short_id):
    """The link page's live part (today's counts and the chart) alone, which webapp/static/live.js polls."""
    get_store().links.get(short_id)  # 404 for a link that does not exist
    days, hours = stats_view.choice()
    return render_template("links/_stats_live.html", link={"id": short_id}, stats=stats_view.build(short_id, days, hours))


@bp.get("/links/<short_id>/stats.csv")
@permission_required(access.READ_LINKS)
def stats_csv(short_id):
    """Download a link's clicks, bot clicks and visitors per UTC day (?days=7|30|90) as CSV."""
    get_store().links.get(short_id)
    days, hours = stats_view.choice()
    if hours:
        abort(422, "The CSV has one row per day: choose days=7, 30 or 90.")
    today = clock.utcnow().date()
    found = get_store().links.daily_stats(short_id, days, today)
    return stats.csv_response(short_id, stats.daily(found, today, days))


@bp.route("/links/<short_id>/edit", methods=["GET", "POST"])
@permission_required(access.WRITE_LINKS)
def edit(short_id):
    """Show the edit form and save the changes, unless the link changed since the form was shown."""
    link = get_store().links.get(short_id)
    form = EditLinkForm() if request.method == "POST" else EditLinkForm(data=_form_data(link))
    status, conflict = 200, None
    if form.validate_on_submit():
        try:
            link, diff = link_edits.edit(short_id, form.changes(), by=g.user, expected_version=int(form.version.data))
        except abuse.DestinationRefused as err:
            form.url.errors.append(err.message)
            status = err.status
        except VersionConflict as err:
            # Nothing was written. The form keeps what was typed; its version becomes the current
            # one, so saving again (after reading the current values) is a deliberate overwrite.
            conflict = link = err.current
            form.version.data = str(conflict["version"])
            status = 409
        else:
            flash(f"Saved {short_id}." if diff else f"Nothing changed in {short_id}.", "success")
            return redirect(url_for("links.detail", short_id=short_id), 303)
    elif form.errors:
        status = 422
    return render_template("links/edit.html", form=form, link=link, conflict=conflict,
                           cache_seconds=current_app.config["LINK_CACHE_SECONDS"]), status


def _form_data(link):
    """The edit form's initial values: the link as it is now."""
    return {"url": link["url"], "title": link["title"] or "", "tags": ", ".join(link["tags"]),
            "note": link["note"] or "", "forward_query": link["forward_query"], "version": str(link["version"])}


@bp.get("/links/<short_id>/disable")
@bp.get("/links/<short_id>/archive")
@permission_required(access.WRITE_LINKS)
def confirm(short_id):
    """Ask before disabling or archiving a link: a page whose button makes the change (no JavaScript needed)."""
    link = get_store().links.get(short_id)
    action = request.path.rsplit("/", 1)[1]
    return render_template("links/confirm.html", link=link, action=action,
                           cursor=request.args.get("cursor") or None)


@bp.post("/links/<short_id>/disable")
@permission_required(access.WRITE_LINKS)
def disable(short_id):
    """Disable a link: it answers 410 but keeps its history."""
    link_edits.edit(short_id, {"is_active": False}, by=g.user)
    flash(f"Disabled {short_id}.", "success")
    return redirect(_back_to_list(), 303)


@bp.post("/links/<short_id>/enable")
@permission_required(access.WRITE_LINKS)
def enable(short_id):
    """Enable a disabled link again."""
    link_edits.edit(short_id, {"is_active": True}, by=g.user)
    flash(f"Enabled {short_id}.", "success")
    return redirect(_back_to_list(), 303)


@bp.post("/links/<short_id>/archive")
@permission_required(access.WRITE_LINKS)
def archive(short_id):
    """Archive a link: it leaves the default list and still redirects."""
    link_edits.edit(short_id, {"archived": True}, by=g.user)
    flash(f"Archived {short_id}. It still redirects; the archived filter finds it.", "success")
    return redirect(_back_to_list(), 303)


@bp.post("/links/<short_id>/unarchive")
@permission_required(access.WRITE_LINKS)
def unarchive(short_id):
    """Bring an archived link back to the list."""
    link_edits.edit(short_id, {"archived": False}, by=g.user)
    flash(f"Unarchived {short_id}.", "success")
    return redirect(url_for("links.detail", short_id=short_id), 303)


def _back_to_list():
    """The list page the button was on (its cursor comes from a hidden field)."""
    return url_for("links.index", cursor=request.form.get("cursor") or None)
