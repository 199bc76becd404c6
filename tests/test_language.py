import pytest

from classifier.language import detect_language, is_covered
from classifier.normalize import clean


@pytest.mark.parametrize(
    "text, language",
    [
        ("Всем привет! Перезалив видео с канала, ссылка в описании, подписывайтесь и ставьте лайки", "ru"),
        ("سلام دوستان، امروز قیمت بیت کوین بالا رفت و همه خوشحال هستند و منتظر روزهای بهتر", "fa"),
        ("Hola amigos, hoy les traigo un nuevo video sobre cómo invertir en criptomonedas de forma segura", "es"),
        # Plain ASCII, no accent: letters are counted on the ASCII path, and CLD2 still tells the language.
        (
            "Hola amigos, hoy les traigo un nuevo video sobre como invertir en criptomonedas de forma segura y facil",
            "es",
        ),
        ("Halo teman teman, hari ini saya mau berbagi cara belajar memasak rendang yang enak untuk pemula", "id"),
        ("Presale live now, 1 BNB = 50,000 MOON, buy at moon-sale.example and join our telegram", "en"),
        ("长期收U，汇率置顶，见U打款 @otc_desk", "zh"),
        ("收U 出U 汇率7.32", "zh"),
        # Han a fifth of the letters but not of all characters (digits, spaces and signs): still Chinese.
        ("合约带单开多 BTC ETH SOL entry 64200 65100 66000 TP 67000 68500 70000 SL 62900 10x", "zh"),
        # Japanese writes Han characters too; kana tell it apart, whichever of the two tests sees the Han.
        (
            "今日は東京で新しい友達と一緒に美味しいラーメンを食べました。とても楽しかったです。"
            "明日は大阪に行って、たこ焼きを食べる予定です。",
            "ja",
        ),
    ],
)
def test_languages_are_told_apart(text, language):
    assert detect_language(clean(text)) == language


@pytest.mark.parametrize(
    "text", ["gm", "lol ok 😂", "$PEPE 🚀🚀", "Вinаnce referral code 88X, 20% off fees for everyone"]
)
def test_short_posts_and_look_alike_letters_count_as_covered(text):
    assert is_covered(detect_language(clean(text)))


def test_only_english_and_chinese_are_covered():
    assert is_covered("en") and is_covered("zh")
    assert not is_covered("ru") and not is_covered("es")
