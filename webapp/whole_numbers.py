"""Parse a whole number typed into a query string or form, bounded before int() sees it."""


def parse(text, max_digits):
    """The int written by `text` (ASCII digits only, at most max_digits of them), else None.

    ASCII only: "²" passes isdigit() but int() refuses it, and "١" is not how anyone writes 1 here.
    The length first: int() raises ValueError past 4,300 digits, which would otherwise be a 500.
    """
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        return None
    return int(text)
