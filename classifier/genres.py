"""The genres and registers every corpus post records (fields ``genre`` and ``register``).

A genre is one bullet of ``../shared/LABELS.md``: what kind of promotion (or of benign post) it is, so each
genre belongs to exactly one label. A register is where and how the post is written. The two let the
training report say how the model does on a kind of post or a way of writing it never saw
(``classifier.generalisation``), and let the corpus README show which cells are thin.
"""

from __future__ import annotations

from classifier.labels import BENIGN, ICO, TRADING_SERVICE

# genre → (label, the LABELS.md bullet it stands for)
GENRES: dict[str, tuple[str, str]] = {
    "token_sale": (ICO, "ICO/IEO/IDO, presale, private or seed round, token or launchpad sale, fair or stealth launch"),
    "whitelist_mint": (ICO, "whitelist / WL spots, mint invitations, allowlist giveaways"),
    "airdrop": (ICO, 'airdrop claims, airdrop task lists, "drop your wallet", "claim your free $XYZ"'),
    "new_token_shill": (ICO, "a freshly launched token shilled with its contract address and where to buy"),
    "exchange_referral": (TRADING_SERVICE, "exchange sign-up links, referral or invite codes, bonuses, fee rebates"),
    "blocked_access": (TRADING_SERVICE, "guides or mirrors to reach a blocked exchange"),
    "otc_p2p": (TRADING_SERVICE, "OTC and P2P desks, USDT for cash or bank transfer (收U, 出U, 承兑, 跑分…)"),
    "signals_pump": (TRADING_SERVICE, "signal channels, VIP and pump groups: calls, reveals, countdowns, results"),
    "managed_trading": (TRADING_SERVICE, "copy-trading, managed accounts, account-manager and recovery testimonials"),
    "agent_recruiting": (TRADING_SERVICE, "recruiting agents or partners for a trading platform (招商, 代理)"),
    "mining_staking_scheme": (TRADING_SERVICE, "cloud-mining, staking or investment plans promising returns"),
    "news": (BENIGN, "news and reporting, including news about ICOs, exchanges, bans, hacks"),
    "market_commentary": (BENIGN, "price analysis, market commentary, opinions, memes"),
    "questions_education": (BENIGN, "questions, education, tutorials on concepts"),
    "warnings_complaints": (BENIGN, "scam warnings, complaints about an exchange, support questions"),
    "general_chat": (BENIGN, "general chat in any language"),
    "offtopic_spam": (BENIGN, "spam that is not about crypto (gambling, adult, loans, generic ads)"),
}

# register → what it looks like
REGISTERS: dict[str, str] = {
    "channel_post": "Telegram channel post",
    "group_chat": "group-chat message",
    "x_post": "forwarded X post",
    "social_comment": "comment under a social-media post",
    "private_pitch": "private-message pitch",
    "one_line_call": "one-line call",
}

PROMOTION_GENRES: tuple[str, ...] = tuple(g for g, (label, _) in GENRES.items() if label != BENIGN)
# Registers where each promotion genre is written in the wild, in English: all of them. Every genre of
# LABELS.md turns up in channels, chats, X posts, comment spam, DMs and one-liners alike.
ENGLISH_REGISTERS_IN_THE_WILD: dict[str, tuple[str, ...]] = {g: tuple(REGISTERS) for g in PROMOTION_GENRES}
# Chinese promotion lives in channels, group chats, private pitches and one-line calls.
CHINESE_REGISTERS_IN_THE_WILD: tuple[str, ...] = ("channel_post", "group_chat", "private_pitch", "one_line_call")
MIN_ENGLISH_PER_CELL = 30


def label_of_genre(genre: str) -> str:
    return GENRES[genre][0]
