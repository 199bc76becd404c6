"""The two baselines the classifier must beat, measured in the same run as the classifier.

- ``KeywordBaseline``: what a moderator would write first — a list of promotion keywords per label.
- ``naive_bayes``: word unigrams and multinomial naive Bayes, the method of the best-known open
  anti-spam bot (tg-spam), trained on the same corpus.

And the speed reference the classifier must keep up with:

- ``char_ngram_logreg``: a plain scikit-learn pipeline, character n-gram tf-idf and logistic regression,
  the first thing anyone would build; its batch throughput and single-post p99 are the speed floor.
"""

from __future__ import annotations

import re

from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline

KEYWORDS = {
    "ico": [
        "presale",
        "pre-sale",
        "ico",
        "ido",
        "ieo",
        "token sale",
        "public sale",
        "private sale",
        "seed round",
        "airdrop",
        "claim",
        "whitelist",
        "wl",
        "mint",
        "fair launch",
        "stealth launch",
        "launchpad",
        "1000x",
        "私募",
        "预售",
        "認購",
        "认购",
        "打新",
        "空投",
        "白名单",
        "发币",
        "首发",
        "上所",
    ],
    "trading_service": [
        "signal",
        "signals",
        "vip",
        "pump",
        "referral",
        "ref code",
        "invite code",
        "sign up",
        "register",
        "bonus",
        "otc",
        "p2p",
        "copy trading",
        "account manager",
        "profit",
        "mirror",
        "join",
        "收u",
        "出u",
        "换u",
        "承兑",
        "跑分",
        "代收",
        "代付",
        "返佣",
        "邀请码",
        "带单",
        "喊单",
        "搬砖",
        "汇率",
    ],
}


class KeywordBaseline:
    """Label by which keyword list matches more words; benign when none matches."""

    def __init__(self, keywords: dict[str, list[str]] = KEYWORDS):
        self.patterns = {
            label: [re.compile(rf"(?<![a-z]){re.escape(w)}(?![a-z])") for w in words]
            for label, words in keywords.items()
        }

    def fit(self, texts, labels):
        return self

    def predict(self, texts):
        out = []
        for text in texts:
            low = text.lower()
            hits = {label: sum(bool(p.search(low)) for p in pats) for label, pats in self.patterns.items()}
            label, count = max(hits.items(), key=lambda kv: kv[1])
            out.append(label if count else "benign")
        return out


def naive_bayes() -> Pipeline:
    return Pipeline([("words", CountVectorizer(lowercase=True)), ("nb", MultinomialNB(alpha=0.5))])


def char_ngram_logreg() -> Pipeline:
    return Pipeline(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True)),
            ("logreg", LogisticRegression(max_iter=1000)),
        ]
    )
