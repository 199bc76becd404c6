"""A keyword classifier with the real one's interface, so handler tests do not need a trained model."""

from __future__ import annotations

from classifier.verdict import Reason, Verdict

RULES = [  # (keyword, label, probability)
    ("presale", "ico", 0.97),
    ("airdrop", "ico", 0.93),
    ("maybe-token", "ico", 0.55),  # below the default threshold: goes to the digest only
    ("vip signals", "trading_service", 0.95),
    ("referral", "trading_service", 0.9),
    ("收u", "trading_service", 0.92),
]


class FakeClassifier:
    def __init__(self, version: str = "fake-1"):
        self.version = version
        self.manifest = {"metrics": {"macro_f1": 0.5}, "created_at": "2025-01-01T00:00:00Z", "sklearn_version": "fake"}
        self.calls: list[str] = []

    def predict(self, text: str) -> Verdict:
        self.calls.append(text)
        low = text.lower()
        for keyword, label, p in RULES:
            if keyword in low:
                rest = (1 - p) / 2
                scores = {"ico": rest, "trading_service": rest, "benign": rest} | {label: p}
                return Verdict(
                    label, scores, [Reason("word", keyword, 1.5), Reason("chars", keyword[:3], 0.4)], self.version
                )
        return Verdict("benign", {"ico": 0.05, "trading_service": 0.05, "benign": 0.9}, [], self.version)

    def predict_many(self, texts: list[str]) -> list[Verdict]:
        return [self.predict(t) for t in texts]
