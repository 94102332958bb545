"""The items that let links be found by word, tag, owner and state without a Scan.

Contract with webapp/store/links.py: entries(link_item) gives the index items of one stored link item
(plain dicts with at least pk and sk). The store writes them in the same transaction as the link
itself, and on an edit puts the entries that are new or changed and deletes the ones that are gone,
so the index never disagrees with a link. A link has at most MAX_ENTRIES of them, so that a create
or an edit (the link, its new entries and its old ones) fits one TransactWriteItems of 100 items.
"""
MAX_ENTRIES = 48


def entries(link_item):
    """The index items of a link item (none yet: search and filters build on this)."""
    return []
