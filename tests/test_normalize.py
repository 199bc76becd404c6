import pytest

from classifier.normalize import clean, fold, normalize, safe_text


def test_full_width_and_styled_letters_become_plain():
    assert normalize("ＵＳＤＴ 收Ｕ") == "usdt 收u"
    assert normalize("𝐏𝐑𝐄𝐒𝐀𝐋𝐄 live") == "presale live"


def test_zero_width_and_invisible_characters_are_removed():
    assert normalize("pre\u200bsa\u200dle\u2060 now\ufeff") == "presale now"
    assert normalize("bi\u00adnance") == "binance"


def test_cyrillic_and_greek_look_alikes_inside_latin_words_are_folded():
    assert normalize("Вinаnсе referral") == "binance referral"
    assert normalize("Αirdrοp") == "airdrop"


def test_real_russian_text_is_left_alone():
    assert normalize("Привет мир") == "привет мир"


def test_spaced_out_letters_are_joined():
    assert normalize("B i n a n c e") == "binance"
    assert normalize("J.O.I.N our V-I-P") == "join our vip"
    assert normalize("空 投 领 取") == "空投领取"


def test_emoji_between_letters_is_noise():
    assert normalize("B🚀i🚀n🚀a🚀n🚀c🚀e") == "binance"
    assert normalize("🔥🔥 presale 🔥🔥") == "presale"


def test_a_word_cut_by_emoji_into_pairs_of_letters_is_joined():
    # Zero-width spaces and emoji in turn: "P\u200br🚀e\u200bs✅a\u200bl🚀e" once leaves "pr es al e".
    assert normalize("P\u200br🚀e\u200bs✅a\u200bl🚀e live") == "presale live"
    assert normalize("Р\u200br🚀e\u200bѕ✅a\u200bl🚀е") == "presale"  # with look-alikes too
    assert normalize("Pr🚀es✅al🚀e") == "presale"
    # Emoji between whole words still only separate them.
    assert normalize("Buy🔥now 🚀 to the moon") == "buy now to the moon"


def test_ordinary_text_keeps_its_words():
    assert normalize("I am a big fan of it") == "i am a big fan of it"


def test_lone_surrogates_become_replacement_characters():
    assert safe_text("bad \ud800 x") == "bad \ufffd x"
    assert safe_text("ok \ud83d\ude80") == "ok 🚀"  # a valid pair stays one emoji
    normalize("bad \udfff")  # must not raise


def test_control_characters_become_spaces_but_newlines_stay():
    assert clean("a\x00b\x07c\nd") == "a b c\nd"


def test_clean_keeps_case_for_addresses_and_codes():
    assert clean("code ＡＢＣ123 at 0xAbC") == "code ABC123 at 0xAbC"


def test_spaced_out_look_alikes_are_folded_too():
    assert normalize("Sign up on В i n а n с е now") == "sign up on binance now"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a  b", "a b"),
        ("a\tb", "a b"),
        ("a \t\r b", "a b"),
        ("a\fb\vc", "a b c"),
        ("空 投 白名单  开放 now", "空投白名单开放 now"),
        ("one two three", "one two three"),
        ("one\n\n\ntwo  \n three", "one\ntwo \n three"),
        ("  lead and trail\t", "lead and trail"),
    ],
)
def test_blanks_are_squeezed_to_one_space_and_blank_lines_dropped(text, expected):
    assert fold(text) == expected
