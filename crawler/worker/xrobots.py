"""Opt-out signals: the X-Robots-Tag response header.

``x_robots_opt_out`` reads X-Robots-Tag headers: a directive in ``constants.OPT_OUT_DIRECTIVES``,
bare or after our product token and a colon (``crawler: noai``), opts the image out;
one after another bot's name (``otherbot: noai``) does not.
"""

from __future__ import annotations

from collections.abc import Iterable

from crawler.constants import OPT_OUT_DIRECTIVES
from crawler.robotstxt import product_token

# X-Robots-Tag directives that take a value after a colon: "max-snippet: 20" names no bot.
_VALUED_DIRECTIVES = frozenset(
    {"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"}
)


def x_robots_opt_out(values: Iterable[str], user_agent: str) -> str | None:
    """The X-Robots-Tag directive that opts the response out for us, or None.

    Each header value is a comma-separated list of directives; ``name: directive``
    starts a part meant for the bot ``name`` only, which runs to the end of that
    header value or the next ``name:``. Directives are matched case-insensitively.
    """
    ours = product_token(user_agent)
    for value in values:
        bot: str | None = None  # None: meant for every bot
        for item in value.split(","):
            name, colon, rest = item.partition(":")
            if colon and name.strip().lower() not in _VALUED_DIRECTIVES:
                bot, item = name.strip().lower(), rest
            directive = item.strip().lower()
            if directive in OPT_OUT_DIRECTIVES and bot in (None, ours):
                return directive if bot is None else f"{bot}: {directive}"
    return None
