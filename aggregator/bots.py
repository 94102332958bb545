"""Tell people from bots and link-preview fetchers, and people's devices apart, by user agent."""
import re
from functools import lru_cache

from crawlerdetect import CrawlerDetect

_crawler_detect = CrawlerDetect()

# Link-preview fetchers that unfurl a link when it is pasted into a chat or an email.
# CrawlerDetect knows most of them; these cover the ones it misses or may miss.
_PREVIEW_FETCHERS = re.compile(
    r"Slack(bot|-ImgProxy)|SkypeUriPreview|MicrosoftPreview|Teams/|Twitterbot|facebookexternalhit|Facebot"
    r"|LinkedInBot|Microsoft Office|Outlook|Google-PageRenderer|GoogleImageProxy|Googlebot|WhatsApp"
    r"|TelegramBot|Discordbot",
    re.IGNORECASE,
)
_TABLET = re.compile(r"iPad|Tablet|Android(?!.*Mobile)", re.IGNORECASE)
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android.*Mobile|Windows Phone", re.IGNORECASE)
_DESKTOP = re.compile(r"Windows NT|Macintosh|X11|CrOS|Linux x86_64", re.IGNORECASE)


@lru_cache(maxsize=4096)
def classify_device(user_agent):
    """Return "bot", "mobile", "tablet", "desktop" or "other" for a user agent string."""
    if not user_agent.strip():
        return "bot"  # Browsers always send one; an empty agent is a script.
    if _PREVIEW_FETCHERS.search(user_agent) or _crawler_detect.isCrawler(user_agent):
        return "bot"
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _DESKTOP.search(user_agent):
        return "desktop"
    return "other"
