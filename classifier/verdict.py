"""What the classifier says about one post: a label, its probabilities and the reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from classifier.language import is_covered


@dataclass(frozen=True)
class Reason:
    """One piece of evidence that weighed towards the verdict's label.

    ``kind`` is ``evidence`` (something extracted: an exchange, a referral code, an address…),
    ``word`` (a word n-gram) or ``chars`` (a character n-gram); a long post that one of its passages
    flagged (classifier.passages) carries first a reason of kind ``passage`` naming it (weight: the
    passage's own probability), then that passage's reasons. ``weight`` is its contribution to the
    label's linear score, so reasons sort by how much they mattered. A post in a language the model was not
    trained on carries a first reason of kind ``language`` (weight 0) that says so.
    """

    kind: str
    feature: str
    weight: float

    def __str__(self) -> str:
        if self.kind == "language":
            return f"language: {self.feature}"
        if self.kind == "watchlist":
            return f"watchlist: {self.feature}"
        if self.kind == "passage":
            return f"passage: {self.feature}"
        return f"{self.kind}: {self.feature} (+{self.weight:.2f})"


def language_reason(language: str) -> Reason:
    """The reason that puts a language the model was not trained on before a moderator."""
    return Reason("language", f"{language}, not covered by the model: scores unreliable", 0.0)


def passage_reason(index: int, count: int, text: str, probability: float) -> Reason:
    """The reason a passage that reads as promotion on its own gives to the long post it is part of."""
    words = " ".join(text.split())
    shown = words if len(words) <= 120 else words[:119] + "…"
    return Reason(
        "passage", f"{index + 1} of {count} reads as promotion on its own ({probability:.2f}): {shown}", probability
    )


def watchlist_reason(match) -> Reason:
    """The reason a look-alike or mirror of a listed platform gives (a :class:`classifier.watchlist.PlatformMatch`)."""
    return Reason("watchlist", str(match), 0.0)


@dataclass(frozen=True)
class Verdict:
    """The label of one post, the probability of every label, and why."""

    label: str
    scores: dict[str, float]
    reasons: list[Reason] = field(default_factory=list)
    model_version: str = ""
    # The post's language (classifier.language): "en", "zh", or the code of one the model was not trained on.
    language: str = "en"
    # Listed platforms the post names or links (classifier.watchlist.PlatformMatch), look-alikes first.
    watchlist: tuple = ()

    @property
    def score(self) -> float:
        """Probability of the verdict's own label."""
        return self.scores[self.label]

    @property
    def is_promotion(self) -> bool:
        return self.label != "benign"

    @property
    def language_covered(self) -> bool:
        """Whether the model was trained on the post's language; when not, its scores mean little."""
        return is_covered(self.language)

    @property
    def platforms(self) -> list[str]:
        """The listed platforms the post names or links, each once."""
        return list(dict.fromkeys(m.platform for m in self.watchlist))

    @property
    def watchlist_flagged(self) -> bool:
        """Whether a look-alike or mirror of a listed platform made (or backs) the verdict."""
        return any(m.flags for m in self.watchlist)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "reasons": [asdict(r) | {"weight": round(r.weight, 4)} for r in self.reasons],
            "model_version": self.model_version,
            "language": self.language,
            "language_covered": self.language_covered,
            "watchlist": [m.to_dict() for m in self.watchlist],
        }
