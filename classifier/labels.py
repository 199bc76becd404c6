"""The three labels of ../shared/LABELS.md, spelled exactly as everywhere else."""

ICO = "ico"
TRADING_SERVICE = "trading_service"
BENIGN = "benign"

LABELS: tuple[str, ...] = (ICO, TRADING_SERVICE, BENIGN)
PROMOTION_LABELS: tuple[str, ...] = (ICO, TRADING_SERVICE)
LANGUAGES: tuple[str, ...] = ("en", "zh")
