"""Views of the link pages."""
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from webapp import abuse, access, audit, clock, csv_export, stats
from webapp.auth import permission_required
from webapp.exceptions import InvalidCursor, SlugTaken
from webapp.link_pages import bp
from webapp.link_pages.forms import LinkForm
from webapp.store import get_store, link_search


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
            audit.record("link.create", target=link["id"], url=link["url"])
            flash("Short link created.", "success")
            return redirect(url_for("links.detail", short_id=link["id"]), 303)
    status = 422 if form.errors else 200
    return render_template("links/new.html", form=form), status


@bp.get("/links/<short_id>")
@permission_required(access.READ_LINKS)
def detail(short_id):
    """Show one link with its short URL ready to copy, and its clicks over the last 30 days."""
    store = get_store()
    link = store.links.get(short_id)
    window = current_app.config["STATS_DAYS"]
    summary = stats.summarise(store.links.daily_stats(short_id, window), clock.utcnow().date(), window)
    return render_template("links/detail.html", link=link, stats=summary)


@bp.post("/links/<short_id>/disable")
@permission_required(access.WRITE_LINKS)
def disable(short_id):
    """Disable a link: it answers 410 but keeps its history."""
    get_store().links.set_active(short_id, False)
    audit.record("link.disable", target=short_id)
    flash(f"Disabled {short_id}.", "success")
    return redirect(_back_to_list(), 303)


@bp.post("/links/<short_id>/enable")
@permission_required(access.WRITE_LINKS)
def enable(short_id):
    """Enable a disabled link again."""
    get_store().links.set_active(short_id, True)
    audit.record("link.enable", target=short_id)
    flash(f"Enabled {short_id}.", "success")
    return redirect(_back_to_list(), 303)


def _back_to_list():
    """The list page the button was on (its cursor comes from a hidden field)."""
    return url_for("links.index", cursor=request.form.get("cursor") or None)
