"""What the classifier says about one post: a label, its probabilities and the reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Reason:
    """One piece of evidence that weighed towards the verdict's label.

    ``kind`` is ``evidence`` (something extracted: an exchange, a referral code, an address…),
    ``word`` (a word n-gram) or ``chars`` (a character n-gram). ``weight`` is its contribution to the
    label's linear score, so reasons sort by how much they mattered.
    """

    kind: str
    feature: str
    weight: float

    def __str__(self) -> str:
        return f"{self.kind}: {self.feature} (+{self.weight:.2f})"


@dataclass(frozen=True)
class Verdict:
    """The label of one post, the probability of every label, and why."""

    label: str
    scores: dict[str, float]
    reasons: list[Reason] = field(default_factory=list)
    model_version: str = ""

    @property
    def score(self) -> float:
        """Probability of the verdict's own label."""
        return self.scores[self.label]

    @property
    def is_promotion(self) -> bool:
        return self.label != "benign"

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "reasons": [asdict(r) | {"weight": round(r.weight, 4)} for r in self.reasons],
            "model_version": self.model_version,
        }
