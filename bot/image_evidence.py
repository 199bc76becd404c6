"""What of a verdict came from a post's picture: the text read from it, and the reasons found in that text.

A moderator judges a flag on a picture differently from one on written text (OCR misreads; a screenshot of news is
not a pitch), so alerts and /check show the text read from the image, and which of the reasons that weighed
were found in it. A reason is found in the image text when its n-gram, or one of its evidence values (the
exchange, the referral code, the handle …), appears there, compared without case or spaces, as OCR joins and
splits words at will.
"""

from __future__ import annotations

import unicodedata
from html import escape

from bot.post import image_lines
from classifier import Reason


def _key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _values(reason: Reason) -> list[str]:
    """What of a reason can be looked for in a text: an n-gram itself, or the values an evidence names."""
    if reason.kind == "evidence":
        _, _, values = reason.feature.partition(": ")
        return [v for v in values.split(", ") if v.strip()]
    if reason.kind in ("word", "chars"):
        return [reason.feature]
    return []


def image_reasons(text: str | None, reasons: list[Reason]) -> list[Reason]:
    """The reasons (in their order) found in the text read from the post's images."""
    seen = _key(" ".join(image_lines(text)))
    if not seen:
        return []
    return [r for r in reasons if any((value := _key(v)) and value in seen for v in _values(r))]


def image_summary(text: str | None, reasons: list[Reason], *, html: bool, limit: int = 300) -> str | None:
    """One line for an alert or a verdict: the text read from the image (cut at ``limit``) and the reasons found
    in it; None when the post's text holds none from an image. HTML escapes the post-derived text inside <code>."""
    read = " / ".join(image_lines(text))
    if not read:
        return None
    if len(read) > limit:
        read = read[: limit - 1].rstrip() + "…"
    found = [r.feature for r in image_reasons(text, reasons)]
    if html:
        line = f"🖼 Read from the image: <code>{escape(read)}</code>"
        if found:
            line += "\nWeighed from the image: " + " · ".join(f"<code>{escape(f[:80])}</code>" for f in found)
        return line
    line = f"Read from the image: {read}"
    if found:
        line += "\nWeighed from the image: " + "; ".join(found)
    return line
