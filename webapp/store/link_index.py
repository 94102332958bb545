"""The items that let links be found by word, tag, owner and state without a Scan.

Contract with webapp/store/links.py: entries(link_item) gives the index items of one stored link item
(plain dicts with at least pk and sk). The store puts a new link's entries right after the link
(BatchWriteItem), and on an edit, in the same transaction as the link, puts the entries that are new
or changed and deletes the ones that are gone. Searches re-check every link they find, so an entry
that a stopped create never wrote, or a stale one, never gives a wrong result (`flask reindex-links`
writes what is missing). A link has at most MAX_ENTRIES of them, so that an edit (the link, its new
entries and its old ones) fits one TransactWriteItems of 100 items.

The entries, each a base-table item with only pk and sk (no GSI; read with Query):
- one per distinct word of the link (its slug, tags, destination host labels, title, path):
  pk "find#<first 2 letters>#<shard>", sk "<word>#<newest-first time>#<id>". A word prefix of 2+
  letters is `begins_with(sk, prefix)` on SHARDS partitions; '#' sorts before every letter or
  digit, so the exact word comes first, then longer words alphabetically, each newest first (the
  time is the link's created_at with every digit d written 9-d).
- tag: pk "tag#<tag>#<shard>", sk "<created_at>#<id>" (newest first read backwards);
- owner: pk "owner#<created_by>#<shard>", sk "<created_at>#<id>";
- disabled (is_active false, not archived): pk "disabled#<shard>", sk "<created_at>#<id>";
- expiry (expires_at set, enabled, not archived): pk "expires#<shard>", sk "<expires_at>#<id>":
  "expired" is the range sk < now, so links that expire later are never read by it.
The shard is crc32(id) % SHARDS, so 10,000 links that share a word ("www", "com", a company's
domain) spread their writes over SHARDS keys (bench/search.py models the busiest one).

Words are lowercase runs of letters and digits, after NFKC (so "example.com" is "example" and "com"; a
punycode host label is also indexed as its Unicode form), cut to WORD_MAX characters. Words of
one character are not indexed (a search needs 2). At most MAX_WORDS words are kept, in this
order: slug, tags, host, title, path; words past the cap (the end of a long title or path) are
dropped from the index, though a search still matches them once another word has found the link.
"""
import re
import unicodedata
import zlib

MAX_ENTRIES = 48
SHARDS = 16
WORD_MIN, WORD_MAX = 2, 32
BUCKET_LENGTH = 2
# Filter entries are at most TAGS_MAX (10) tags + owner + disabled + expiry = 13; words fill the rest.
MAX_WORDS = MAX_ENTRIES - 13
WORD_PK, TAG_PK, OWNER_PK, DISABLED_PK, EXPIRES_PK = "find#", "tag#", "owner#", "disabled#", "expires#"
_WORD_RE = re.compile(r"[^\W_]+")  # letters and digits of any script; '_', '-', '.', '/' separate words
_INVERT = str.maketrans("0123456789", "9876543210")


def words(text):
    """The lowercase words of a text, in order, repeats kept (what searches and the index both use).

    NFKC first, so that a title pasted in decomposed form ("cafe" + U+0301, as macOS file names are) or
    in full-width letters is found by the same word typed the usual way.
    """
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold()) if text else []


def link_words(link_item):
    """Every word of a link, in index order (slug, tags, host, title, path), each once, uncut."""
    host, path = _host_and_path(link_item.get("url", ""))
    found = words(link_item.get("pk") or link_item.get("id", ""))
    for tag in link_item.get("tags", []):
        found += words(tag)
    for label in host.split("."):
        found += words(label) + words(_unicode_label(label))
    found += words(link_item.get("title"))
    found += words(path)
    return list(dict.fromkeys(found))


def indexed_words(link_item):
    """The words that get an entry: at least WORD_MIN long, cut to WORD_MAX, at most MAX_WORDS."""
    kept = dict.fromkeys(word[:WORD_MAX] for word in link_words(link_item) if len(word) >= WORD_MIN)
    return list(kept)[:MAX_WORDS]


def shard(short_id):
    """The shard of every entry of a link."""
    return zlib.crc32(short_id.encode("utf-8")) % SHARDS


def word_pk(word, shard_number):
    """The partition of a word (or a search prefix of it) in one shard."""
    return f"{WORD_PK}{word[:BUCKET_LENGTH]}#{shard_number}"


def newest_first(created_at):
    """A created_at that sorts newest first when read forwards (every digit d as 9-d)."""
    return created_at.translate(_INVERT)


def entries(link_item):
    """The index items of a link item (see the module docstring), at most MAX_ENTRIES."""
    short_id, created_at = link_item["pk"], link_item["created_at"]
    n = shard(short_id)
    at = f"{created_at}#{short_id}"
    items = [{"pk": word_pk(word, n), "sk": f"{word}#{newest_first(created_at)}#{short_id}"}
             for word in indexed_words(link_item)]
    items += [{"pk": f"{TAG_PK}{tag}#{n}", "sk": at} for tag in link_item.get("tags", [])]
    if link_item.get("created_by"):
        items.append({"pk": f"{OWNER_PK}{link_item['created_by']}#{n}", "sk": at})
    if not link_item.get("archived"):
        if not link_item.get("is_active", True):
            items.append({"pk": f"{DISABLED_PK}{n}", "sk": at})
        elif link_item.get("expires_at"):
            items.append({"pk": f"{EXPIRES_PK}{n}", "sk": f"{link_item['expires_at']}#{short_id}"})
    return items[:MAX_ENTRIES]


def entry_id(sk):
    """The link id at the end of an entry's sort key."""
    return sk.rpartition("#")[2]


def _host_and_path(url):
    """The host and the rest of a stored URL (its scheme dropped), without parsing twice."""
    rest = url.partition("://")[2] or url
    host, _, path = rest.partition("/")
    host = host.rpartition("@")[2].partition(":")[0]  # no userinfo, no port
    return host, path


def _unicode_label(label):
    """A punycode host label ('xn--bcher-kva') as Unicode ('bücher'); other labels give ''."""
    if not label.lower().startswith("xn--"):
        return ""
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:  # not valid punycode: the ASCII form is indexed anyway
        return ""
