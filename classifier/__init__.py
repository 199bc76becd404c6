"""Pure machine learning: tells whether a post promotes an ICO, a crypto trading service, or neither.

Knows nothing of Telegram or SQLite. The public surface:

- :class:`Verdict`, :class:`Reason` — what the model says about one post;
- :class:`PromotionClassifier` — ``predict(text)``, ``predict_many(texts)``, ``version``, ``manifest``;
- :func:`load_model`, :func:`load_or_train`, :class:`ModelLoadError` — persistence with a checked manifest.
"""

from classifier.labels import BENIGN, ICO, LABELS, PROMOTION_LABELS, TRADING_SERVICE
from classifier.verdict import Reason, Verdict

__all__ = [
    "BENIGN", "ICO", "LABELS", "PROMOTION_LABELS", "TRADING_SERVICE", "Reason", "Verdict",
    "PromotionClassifier", "ModelLoadError", "load_model", "load_or_train",
]


def __getattr__(name):
    # Lazy so that importing the labels does not pull in scikit-learn.
    if name == "PromotionClassifier":
        from classifier.model import PromotionClassifier
        return PromotionClassifier
    if name in ("ModelLoadError", "load_model", "load_or_train"):
        from classifier import persistence
        return getattr(persistence, name)
    raise AttributeError(name)
