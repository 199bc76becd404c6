"""Structured evidence pulled out of a post: links, exchanges, referral codes, handles, addresses, OTC slang.

Evidence is kept as data so that a moderator sees *what* was found ("referral code 88X on binance"), and
the model reads it as features next to the n-grams.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from classifier.normalize import clean, fold
from classifier.platforms import default_platforms


# Exchange → names and domains, looked for in normalized text (lower case, spaced letters joined). They come
# from the bundled platform list (classifier/data/platforms.csv): the name, the aliases, and the domains whose
# first label is neither ("gate" alone is an ordinary English word, so Gate needs its domain or its Chinese
# name). The model reads them as features, so the list it was trained with is the bundled one.
def _needles(platform) -> tuple[str, ...]:
    names = [platform.name.casefold(), *(a.casefold() for a in platform.aliases)]
    return tuple(dict.fromkeys(names + [d for d in platform.domains if d.split(".")[0] not in names]))


EXCHANGES: dict[str, tuple[str, ...]] = {p.name.casefold().split(".")[0]: _needles(p) for p in default_platforms()}
# Names that are also parts of other words ("okx" in "tokxyz") count only as whole tokens; the others
# count anywhere, so "binance-cn.example" and "mybinancebonus" name Binance.
_WHOLE_TOKEN = {"okx", "okex", "htx", "mexc", "kraken", "lbank", "coinex"}
_TOKEN_NAMES = {needle: name for name, needles in EXCHANGES.items() for needle in needles if needle in _WHOLE_TOKEN}
_SUBSTRING_NAMES = [
    (needle, name) for name, needles in EXCHANGES.items() for needle in needles if needle not in _WHOLE_TOKEN
]
_TOKEN = re.compile(r"[a-z0-9]+")
# Every needle in one pattern: a single pass in C tells whether a post names any exchange at all, which
# most posts do not; only those that do pay for the thirty substring tests that say which.
_ANY_EXCHANGE = re.compile("|".join(re.escape(needle) for needles in EXCHANGES.values() for needle in needles))


def find_exchanges(normalized: str) -> list[str]:
    """Exchanges named in a normalized text, in the order of :data:`EXCHANGES`."""
    if not _ANY_EXCHANGE.search(normalized):
        return []
    found = {name for needle, name in _SUBSTRING_NAMES if needle in normalized}
    if maybe := [needle for needle in _TOKEN_NAMES if needle in normalized]:  # tokenise only if worth it
        tokens = set(_TOKEN.findall(normalized))
        found.update(_TOKEN_NAMES[needle] for needle in maybe if needle in tokens)
    return [name for name in EXCHANGES if name in found]


_TLDS = (
    "com|io|net|org|app|xyz|finance|exchange|top|vip|cc|me|co|pro|club|site|online|info|ai|fi|gg|world|"
    "tech|link|live|cn|hk|tw|ru|uk|us|biz|fun|space|store|shop|trade|money|market|network|cash|bet|win|"
    "one|ly|to|sh|so|lol|meme|dev|tv|asia|example"
)
_URL = re.compile(
    rf"(?:https?://|www\.)[^\s<>\"'，。、）)】]+|(?<![@\w.-])(?:[a-z0-9][a-z0-9-]*\.)+(?:{_TLDS})\b(?:/[^\s<>\"'，。、）)】]*)?",
    re.IGNORECASE,
)
_REFERRAL_PARAMS = {
    "ref",
    "referral",
    "refcode",
    "ref_code",
    "referralcode",
    "referral_code",
    "invite",
    "invitecode",
    "invite_code",
    "invitationcode",
    "inviter",
    "code",
    "r",
    "aff",
    "affiliate",
    "affiliate_id",
    "promo",
    "promocode",
    "channelcode",
    "shareid",
    "vipcode",
    "start",
}
_REFERRAL_PATH = re.compile(r"/(?:ref|join|invite|referral|register|r|i|signup)/([A-Za-z0-9_-]{3,})", re.IGNORECASE)
_REFERRAL_TEXT = re.compile(
    r"(?:ref(?:erral)?|invite|invitation|promo|bonus|sign[- ]?up)\s*(?:code|id)\s*[:：=]?\s*[\"'“]?([A-Za-z0-9]{4,12})\b"
    r"|\bcode\s*[:：]?\s*([A-Z0-9]*\d[A-Z0-9]*)\b"
    r"|(?:邀请码|邀請碼|推荐码|推薦碼|注册码|註冊碼|邀请ID|返佣码)\s*[:：]?\s*([A-Za-z0-9]{4,12})",
    re.IGNORECASE,
)
# What _REFERRAL_TEXT cannot match without, looked for before running it. A bare "id" would send one post
# in six through that long pattern ("said", "paid", "video"), so "id" must follow a referral word. Like
# _REFERRAL_TEXT, this reads the cleaned text ignoring case, where "i" also matches the Turkish "ı" and "İ"
# that case-folding keeps.
_REFERRAL_ID = re.compile(r"(?:ref(?:erral)?|invite|invitation|promo|bonus|sign[- ]?up|邀请)\s*id", re.IGNORECASE)


def _may_hold_referral_text(cleaned: str, normalized: str) -> bool:
    # Substring tests first: each costs a few dozen nanoseconds, a regex search over the post microseconds.
    if "code" in normalized or "码" in normalized or "碼" in normalized:
        return True
    return ("id" in normalized or "ı" in cleaned or "İ" in cleaned) and _REFERRAL_ID.search(cleaned) is not None


_TELEGRAM_LINK = re.compile(
    r"(?:https?://)?(?:t|telegram)\.me/(?:joinchat/|\+)?[A-Za-z0-9_+/-]+|tg://\S+", re.IGNORECASE
)
_HANDLE = re.compile(r"(?<![\w.@/])@([A-Za-z][A-Za-z0-9_]{3,31})\b")
# Words that make a handle a point of contact ("DM @x", "联系 @x") rather than a mention of an account,
# which is everywhere in forwarded X posts and news.
_CONTACT_CUE = re.compile(
    r"(?:dm|pm|contact|message|inbox|text|write|join|admin|support|manager|telegram|tg|whatsapp|signal|"
    r"飞机|纸飞机|联系|聯繫|咨询|諮詢|私聊|私信|客服|频道|頻道|群|vx|v信|微信|威|薇|商务|商務|对接|對接|找)\W{0,6}$",
    re.IGNORECASE,
)

_BASE58 = "1-9A-HJ-NP-Za-km-z"
ADDRESS_PATTERNS: dict[str, re.Pattern] = {
    "evm": re.compile(r"\b0x[a-fA-F0-9]{40}\b"),
    "tron": re.compile(rf"\bT[{_BASE58}]{{33}}\b"),
    "btc": re.compile(rf"\bbc1[ac-hj-np-z02-9]{{11,71}}\b|\b[13][{_BASE58}]{{25,34}}\b"),
    "ton": re.compile(r"\b(?:EQ|UQ)[A-Za-z0-9_-]{46}\b"),
    "solana": re.compile(rf"\b[{_BASE58}]{{32,44}}\b"),
}

# Chinese OTC and money-moving slang of LABELS.md, matched on normalized (lower-case) text.
OTC_TERMS = (
    "收u",
    "出u",
    "换u",
    "换币",
    "回u",
    "u商",
    "承兑",
    "换汇",
    "跑分",
    "代收",
    "代付",
    "搬砖",
    "车队",
    "料主",
    "卸货",
    "洗米",
    "出金",
    "入金",
    "汇率",
    "打款",
    "秒到",
    "担保",
    "面交",
    "u卡",
    "一道",
    "二道",
    "卡接",
    "收币",
    "出币",
    "兑u",
    "usdt兑",
    "现金换",
    "换现金",
    "收購u",
    "收購",
    "承兌",
    "跑分",
    "代收代付",
)
_OTC = re.compile("|".join(sorted({re.escape(t) for t in OTC_TERMS}, key=len, reverse=True)))


# The parts of a trading call, read on normalized (lower-case) text: a call names at least two of them.
# Each part has the substrings every one of its matches contains: a post without any of them skips that
# part's search. A search led by \b cannot jump ahead to a likely start, so it tries every position of the
# post; six such searches were a third of the evidence's time, and most posts hold none of the triggers.
# For the same reason each pattern opens with a lookahead on the characters its matches start with:
# re then skips to those positions, which makes the searches that do run 25-45% faster.
def _starting_with(first: str, pattern: str) -> re.Pattern:
    return re.compile(f"(?=[{first}])(?:{pattern})")


SIGNAL_PARTS: dict[str, tuple[tuple[str, ...], re.Pattern]] = {
    # A quote after a slash, or a ticker glued to usdt/usdc: "eth" alone is in "something" and "method".
    "pair": (
        ("usd", "/btc", "/ btc", "/eth", "/ eth", "/bnb", "/ bnb"),
        _starting_with(
            "a-z0-9", r"\b[a-z0-9]{2,10} ?/ ?(?:usdt|usdc|usd|btc|eth|bnb)\b|\b[a-z0-9]{2,10}(?:usdt|usdc)\b(?<!^usdt)"
        ),
    ),
    "direction": (
        ("long", "short", "buy", "sell", "做多", "做空", "多单", "空单", "开多", "开空"),
        _starting_with("lsb做多空开", r"\b(?:long|short|buy zone|buy|sell)\b|做多|做空|多单|空单|开多|开空"),
    ),
    "entry": (
        ("entr", "enter", "buy zone", "buy at", "buy between", "入场", "进场", "开仓", "点位", "建仓"),
        _starting_with(
            "eb入进开点建",
            r"\b(?:entry|entries|enter|entry zone|buy zone|buy at|buy between)\b|入场|进场|开仓|点位|建仓",
        ),
    ),
    # "t" alone is in nine English posts in ten: "t1" to "t9" (and "t0") instead.
    "targets": (
        ("tp", "target", "profit", *(f"t{digit}" for digit in range(10)), "止盈", "目标"),
        _starting_with("t止目", r"\b(?:tp ?\d?|targets?|take[ -]?profit|t\d)\b|止盈|目标"),
    ),
    "stop": (
        ("sl", "stop", "invalidation", "止损", "防守"),
        _starting_with("si止防", r"\b(?:sl|stop[ -]?loss|stop|invalidation)\b|止损|防守"),
    ),
    "leverage": (
        ("x", "lev", "cross", "isolated", "倍", "杠杆", "全仓", "逐仓"),
        _starting_with(
            r"\dxlci杠全逐", r"\b(?:\d{1,3} ?x|x ?\d{1,3}|lev(?:erage)?|cross|isolated)\b|\d{1,3} ?倍|杠杆|全仓|逐仓"
        ),
    ),
}


def find_signal_parts(normalized: str) -> list[str]:
    """The parts of a trading call a normalized post names, in the order of :data:`SIGNAL_PARTS`."""
    return [
        name
        for name, (triggers, pattern) in SIGNAL_PARTS.items()
        if any(t in normalized for t in triggers) and pattern.search(normalized)
    ]


# A result or a gain told in the first person, the skeleton of a testimonial for a manager or a scheme.
_TESTIMONIAL = re.compile(
    r"\b(?:i|we|my|she|he|her|him)\b[^.\n]{0,40}\b(?:invest(?:ed)?|earn(?:ed|ing)?|made|profit(?:ed)?|withdr[ae]w\w*|"
    r"receiv(?:ed|ing)|recovered|got (?:my|back)|paid out|returns?)\b|\b(?:thanks to|thank you|all thanks|highly recommend|"
    r"legit|trustworthy|god bless)\b|赚了|回本|提现到账|收益|感谢.{0,6}老师|跟着.{0,6}老师|靠谱",
)
_DIGIT = re.compile(r"\d")
_PHONE = re.compile(r"(?:\+|whats ?app\W{0,3}|wa\.me/)\d[\d \-()]{7,16}\d")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_-]{25,}")  # every address kind is at least 26 characters
_PERCENT = re.compile(r"\d[\d,.]*\s?%")
_MONEY = re.compile(r"[$¥€]\s?\d|\d\s?(?:usdt|usd|u\b|bnb|eth|sol|btc|元|万|刀)", re.IGNORECASE)
_EMOJI = re.compile("[\u2600-\u27bf\U0001f000-\U0001faff]")


@dataclass
class Evidence:
    """What was found in one post. Every list holds the matched strings, de-duplicated, in order."""

    urls: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)
    referrals: list[str] = field(default_factory=list)
    telegram_links: list[str] = field(default_factory=list)
    handles: list[str] = field(default_factory=list)
    contact_handles: list[str] = field(default_factory=list)
    addresses: dict[str, list[str]] = field(default_factory=dict)
    otc_terms: list[str] = field(default_factory=list)
    signal_parts: list[str] = field(default_factory=list)  # parts of a trading call, in posts with digits
    phones: list[str] = field(default_factory=list)
    testimonial: bool = False  # testimonial wording, looked for only in posts that give a contact
    emoji: int = 0
    percents: int = 0
    amounts: int = 0
    length: int = 0

    def features(self) -> dict[str, float]:
        """Numeric features for the model, named so that a weight reads as a reason."""
        f: dict[str, float] = {}

        def flag(name: str, count: int) -> None:
            if count:
                f[name] = 1.0 + math.log(count)

        flag("link", len(self.urls))
        flag("exchange named", len(self.exchanges))
        flag("referral code or link", len(self.referrals))
        flag("telegram link", len(self.telegram_links))
        flag("telegram handle", len(self.handles))
        flag("handle given as contact", len(self.contact_handles))
        for kind, found in self.addresses.items():
            flag(f"{kind} address", len(found))
        flag("chinese otc slang", len(self.otc_terms))
        if len(self.signal_parts) >= 2:
            f["trading call"] = 1.0 + math.log(len(self.signal_parts) - 1)
        flag("phone number", len(self.phones))
        if self.testimonial and (self.contact_handles or self.phones or self.telegram_links):
            f["testimonial with contact"] = 1.0
        # Not the emoji count: it said nothing a post's words do not, and alone it decided verdicts ("Happy
        # birthday!" and a hundred 🎉 read as an ICO). It stays in the evidence for the record.
        flag("percentages", self.percents)
        flag("amounts", self.amounts)
        if self.exchanges and self.referrals:
            f["exchange with referral"] = 1.0
        if self.exchanges and (self.urls or self.telegram_links or self.handles):
            f["exchange with contact or link"] = 1.0
        if self.addresses and (self.urls or self.telegram_links):
            f["address with link"] = 1.0
        return f

    def describe(self, feature: str) -> str:
        """The feature with what was found behind it, for a moderator."""
        found = self._found(feature)
        if not found:
            return feature
        shown = ", ".join(_shorten(x) for x in found[:3])
        return f"{feature}: {shown}" + (" …" if len(found) > 3 else "")

    def _found(self, feature: str) -> list[str]:
        if feature.endswith(" address"):
            return self.addresses.get(feature.removesuffix(" address"), [])
        if feature == "link":
            return self.domains or self.urls
        if feature == "telegram handle":
            return ["@" + h for h in self.handles]
        if feature == "handle given as contact":
            return ["@" + h for h in self.contact_handles]
        if feature == "exchange with referral":
            return self.exchanges + self.referrals
        return {
            "exchange named": self.exchanges,
            "exchange with contact or link": self.exchanges,
            "referral code or link": self.referrals,
            "telegram link": self.telegram_links,
            "chinese otc slang": self.otc_terms,
            "trading call": self.signal_parts,
            "phone number": self.phones,
            "testimonial with contact": ["@" + h for h in self.contact_handles] + self.phones + self.telegram_links,
        }.get(feature, [])

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}


def _shorten(value: str, width: int = 40) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def _unique(items: list) -> list:
    # Most lists here are empty or hold one item: no dict to build for those.
    return list(dict.fromkeys(items)) if len(items) > 1 else items


def _referrals_in_url(url: str) -> list[str]:
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        query = parse_qsl(parts.query, keep_blank_values=False)
    except ValueError:
        return []
    found = [f"{k}={v}" for k, v in query if k.lower() in _REFERRAL_PARAMS and v]
    found += [m.group(0) for m in _REFERRAL_PATH.finditer(parts.path)]
    return found


def _domain(url: str) -> str | None:
    try:
        host = urlsplit(url if "://" in url else "http://" + url).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


def extract(text: str, *, cleaned: str | None = None, normalized: str | None = None) -> Evidence:
    """Find the evidence in a post. Pass ``cleaned``/``normalized`` when already computed."""
    cleaned = clean(text) if cleaned is None else cleaned
    normalized = fold(cleaned) if normalized is None else normalized
    # Cheap substring tests first: most posts have no link, handle or address, and the regexes cost more.
    telegram_links = _unique(_TELEGRAM_LINK.findall(cleaned)) if ".me/" in normalized or "tg://" in normalized else []
    # Only whitespace-separated pieces with a dot can hold a link; scanning just those is far cheaper.
    urls = _unique(
        [
            found.rstrip(".,;:!?")
            for piece in cleaned.split()
            if "." in piece
            for found in _URL.findall(piece)
            if not _TELEGRAM_LINK.match(found)
        ]
    )
    handles = list(_HANDLE.finditer(cleaned)) if "@" in cleaned else []
    referrals = [r for u in urls + telegram_links for r in _referrals_in_url(u)]
    if _may_hold_referral_text(cleaned, normalized):
        referrals += [next(g for g in m.groups() if g) for m in _REFERRAL_TEXT.finditer(cleaned)]
    addresses: dict[str, list[str]] = {}
    taken: set[str] = set()
    if _LONG_TOKEN.search(cleaned):
        for kind, pattern in ADDRESS_PATTERNS.items():
            found = [a for a in _unique(pattern.findall(cleaned)) if a not in taken and _looks_random(a, kind)]
            if found:
                addresses[kind] = found
                taken.update(found)
    # A call always quotes a level and a testimonial matters only with a way to reach its hero: the
    # regexes run only on posts that have digits, or a contact.
    has_digit = _DIGIT.search(normalized) is not None
    signal_parts = find_signal_parts(normalized) if has_digit else []
    phones = _unique(_PHONE.findall(cleaned)) if ("+" in cleaned or "wa" in normalized) else []
    contact_handles = _unique(
        [m.group(1) for m in handles if _CONTACT_CUE.search(cleaned, max(0, m.start() - 16), m.start())]
    )
    testimonial = bool(contact_handles or phones or telegram_links) and _TESTIMONIAL.search(normalized) is not None
    return Evidence(
        urls=urls,
        domains=_unique([d for d in map(_domain, urls) if d]) if urls else [],
        exchanges=find_exchanges(normalized),
        referrals=_unique(referrals),
        telegram_links=telegram_links,
        handles=_unique([m.group(1) for m in handles]),
        contact_handles=contact_handles,
        addresses=addresses,
        otc_terms=_unique(_OTC.findall(normalized)),
        signal_parts=signal_parts,
        phones=phones,
        testimonial=testimonial,
        emoji=len(_EMOJI.findall(text)),
        # Both need a digit, and folding keeps every digit of the cleaned text.
        percents=len(_PERCENT.findall(cleaned)) if has_digit and "%" in cleaned else 0,
        amounts=len(_MONEY.findall(cleaned)) if has_digit else 0,
        length=len(cleaned),
    )


def _looks_random(candidate: str, kind: str) -> bool:
    # A base58 run of 32+ letters could in principle be a long word; real addresses mix digits and case.
    if kind in ("evm", "ton") or candidate.startswith("bc1"):
        return True
    return any(c.isdigit() for c in candidate) and any(c.isupper() for c in candidate[1:])
