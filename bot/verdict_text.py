"""A verdict as a moderator reads it: in the terminal (``compliance-bot check``) and in Telegram (/check)."""

from __future__ import annotations

from html import escape

from bot.alerts import LABEL_NAMES, excerpt
from bot.image_evidence import image_summary
from classifier import Verdict

MAX_REASONS_SHOWN = 8  # in a chat message; the terminal shows every reason


def verdict_text(verdict: Verdict, *, html: bool = False, text: str | None = None) -> str:
    """The label and its probability, every label's probability, the reasons, the model version; as plain
    text for a terminal, or as Telegram HTML (post-derived text escaped and inside <code>). Given the scanned
    ``text``, the text read from its image and the reasons found in it follow."""
    shown = _verdict_text(verdict, html=html)
    if (seen := image_summary(text, verdict.reasons, html=html, limit=1000 if html else 4096)) is not None:
        shown += "\n" + seen
    return shown


def _verdict_text(verdict: Verdict, *, html: bool) -> str:
    if not html:
        scores = " · ".join(f"{label} {p:.0%}" for label, p in verdict.scores.items())
        lines = [f"{verdict.label} ({verdict.score:.0%})", f"  {scores}", f"  model {verdict.model_version}"]
        if verdict.reasons:
            lines.append("Reasons:")
            lines += [f"  - {reason}" for reason in verdict.reasons]
        if getattr(verdict, "watchlist", ()):
            lines.append("Listed platforms:")
            lines += [f"  - {match}" for match in verdict.watchlist]
        return "\n".join(lines)
    ranked = sorted(verdict.scores.items(), key=lambda kv: -kv[1])
    lines = [
        f"<b>{escape(LABEL_NAMES.get(verdict.label, verdict.label))}</b> (p={verdict.score:.2f})",
        " · ".join(f"{escape(label)} {p:.2f}" for label, p in ranked),
    ]
    if verdict.reasons:
        lines.append("Why:")
        lines += [f"• <code>{escape(excerpt(str(r), 100))}</code>" for r in verdict.reasons[:MAX_REASONS_SHOWN]]
    if getattr(verdict, "watchlist", ()):
        lines.append(
            "Listed platforms: "
            + ", ".join(f"<code>{escape(excerpt(str(m), 80))}</code>" for m in verdict.watchlist[:MAX_REASONS_SHOWN])
        )
    lines.append(f"<i>model {escape(verdict.model_version)}</i>")
    return "\n".join(lines)
