"""Pure machine learning: tells whether a post promotes an ICO, a crypto trading service, or neither.

This module is the package's contract: ``bot/`` (and anything else outside ``classifier/``) imports only
the names in ``__all__`` from here, never from the modules behind them. The package knows nothing of
Telegram or SQLite.

- the labels of ``../shared/LABELS.md``: ``ICO``, ``TRADING_SERVICE``, ``BENIGN``, ``LABELS``,
  ``PROMOTION_LABELS``;
- a verdict: :class:`Verdict` (label, probability per label, reasons, model version, language) and
  :class:`Reason`;
- the model: :class:`PromotionClassifier` (``predict``, ``predict_many``, ``version``, ``manifest``);
  :func:`load_model`, :func:`load_or_train` (trains from the bundled corpus on first use),
  :class:`ModelLoadError`, :func:`manifest_path`;
- input: :data:`MAX_CHARS` (what of a post is read: Telegram's 4,096 plus room for hidden links),
  :func:`safe_text` (lone surrogates replaced, so any text can be stored and sent);
- training data: :class:`LabelledPost`, :func:`parse_post_line` (one JSONL line, with a clear error),
  :func:`guess_language`;
- platform watchlists: :class:`Platform` (name, domains, aliases, note), :func:`read_platforms` (a CSV or
  JSONL list file's text → platforms and :class:`RowProblem` per bad line), :func:`default_platforms` (the
  bundled list), :class:`Watchlist` (a list compiled for matching; pass it as
  ``PromotionClassifier.predict_many(..., watchlist=)`` or set ``PromotionClassifier.watchlist``) and
  :class:`PlatformMatch` (what ``Verdict.watchlist`` holds);
- training and versions: :func:`train_and_save`, :class:`GateRefused`, :func:`list_versions`,
  :func:`install`, :func:`installed_version`, :func:`previous_version`, :class:`VersionError`.

The modules behind the model (scikit-learn, numpy) load on first use of a name that needs them, so that
importing the labels, or a command's ``--help``, stays fast.
"""

from importlib import import_module

from classifier.labels import BENIGN, ICO, LABELS, PROMOTION_LABELS, TRADING_SERVICE
from classifier.normalize import MAX_CHARS, safe_text
from classifier.verdict import Reason, Verdict

# name → the module that defines it, imported when the name is first used
_LAZY = {
    "PromotionClassifier": "classifier.model",
    "ModelLoadError": "classifier.persistence",
    "load_model": "classifier.persistence",
    "manifest_path": "classifier.persistence",
    "LabelledPost": "classifier.corpus",
    "guess_language": "classifier.corpus",
    "parse_post_line": "classifier.corpus",
    "load_or_train": "classifier.train",
    "train_and_save": "classifier.train",
    "GateRefused": "classifier.train",
    "list_versions": "classifier.versions",
    "install": "classifier.versions",
    "installed_version": "classifier.versions",
    "previous_version": "classifier.versions",
    "VersionError": "classifier.versions",
    "Platform": "classifier.platforms",
    "RowProblem": "classifier.platforms",
    "default_platforms": "classifier.platforms",
    "read_platforms": "classifier.platforms",
    "Watchlist": "classifier.watchlist",
    "PlatformMatch": "classifier.watchlist",
}

__all__ = [
    "BENIGN",
    "ICO",
    "LABELS",
    "PROMOTION_LABELS",
    "TRADING_SERVICE",
    "Reason",
    "Verdict",
    "MAX_CHARS",
    "safe_text",
    *_LAZY,
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'classifier' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
