"""Tests of ticker.normalise: the reader-facing form, the matching form and the dedupe key."""

# Arabic letters and digits are the subject matter here, not look-alike typos.
# ruff: noqa: RUF001

from __future__ import annotations

import hashlib
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.normalise import (
    _fold,
    _strip_punctuation,
    comparison_form,
    dedupe_key,
    display_headline,
    language_of,
    strip_alert_prefix,
)

# Text that exercises the interesting parts: Arabic letters and marks, Latin accents, every
# kind of whitespace, punctuation, digits of three scripts and the alert labels themselves.
_HEADLINE_CHARS = st.sampled_from(
    list("abcXYZ éÉñÑüßİı ،؛؟«»\"'’:-–—|[]().,%$ 0123456789٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹")
    + list("ابتجدهوزيىةأإآٱءؤئـ")
    + ["\u064e", "\u0650", "\u0651", "\u0652", "\u0301", "\u0308"]
    + ["\n", "\r", "\t", "\u2028", "\u200f", "\u00a0", "\u3000", "Ｆ", "ﻻ", "ﬁ"]
    + ["BREAKING: ", "Breaking news - ", "URGENT: ", "ÚLTIMA HORA: ", "عاجل ", "عاجل: "]
)
_HEADLINES = st.lists(_HEADLINE_CHARS, max_size=40).map("".join) | st.text(max_size=60)
_LANGS = st.sampled_from(["en", "ar", "es", "und"])


def test_display_collapses_all_whitespace_to_single_spaces() -> None:
    """Newlines, tabs, CR, Unicode line separators and runs of spaces become one space, trimmed."""
    raw = "  Two killed\r\nin Jenin\t\traid \u2028 medics   say \n"
    assert display_headline(raw) == "Two killed in Jenin raid medics say"


def test_display_composes_to_nfc() -> None:
    """Decomposed accents are composed, so the same headline is stored as the same code points."""
    assert display_headline("Explosio\u0301n en Monterrey") == "Explosión en Monterrey"


def test_display_changes_nothing_else() -> None:
    """Case, punctuation, labels, markup and right-to-left text reach readers untouched."""
    for text in ["BREAKING: Fed <b>holds</b> rates", "عاجل: مقتلُ ٥ أشخاص", "«Última hora»"]:
        assert display_headline(text) == text


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("BREAKING: Two killed in Jenin", "en", "two killed in jenin"),
        ("Breaking news - Two killed in Jenin", "en", "two killed in jenin"),
        ("URGENT: Fire at Notre-Dame", "en", "fire at notre dame"),
        ("UPDATE: Toll rises to 1,200", "en", "toll rises to 1200"),
        ("[BREAKING] Quake hits Chile", "en", "quake hits chile"),
        ("BREAKING: UPDATE: Quake hits Chile", "en", "quake hits chile"),
        ("URGENTE: Milei gana en Argentina", "es", "milei gana en argentina"),
        ("ÚLTIMA HORA: Sismo sacude Chile", "es", "sismo sacude chile"),
        ("Última hora - Dimite el presidente de Perú", "es", "dimite el presidente de peru"),
        ("عاجل: انفجار في بيروت", "ar", "انفجار في بيروت"),
        ("عاجل انفجار في بيروت", "ar", "انفجار في بيروت"),
        ("«عاجل» انفجار في بيروت", "ar", "انفجار في بيروت"),
        ("BREAKING: انفجار في بيروت", "ar", "انفجار في بيروت"),
    ],
)
def test_comparison_form_strips_alert_labels(text: str, lang: str, expected: str) -> None:
    """Alert labels in front of a headline, in the edition's language or English, are dropped."""
    assert comparison_form(text, lang) == expected


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("Update on ceasefire talks", "en", "update on ceasefire talks"),
        ("Breaking news emerges from Gaza", "en", "breaking news emerges from gaza"),
        ("Urgent-care clinics close in Ohio", "en", "urgent care clinics close in ohio"),
        ("BREAKING:", "en", "breaking"),
        ("عاجل", "ar", "عاجل"),
    ],
)
def test_comparison_form_keeps_words_that_are_not_labels(
    text: str, lang: str, expected: str
) -> None:
    """A label word without a separator is part of the headline, and nothing strips to empty."""
    assert comparison_form(text, lang) == expected


def test_comparison_form_folds_latin_accents_and_case() -> None:
    """Accents, case and special Latin letters fold, so spelling variants of a name meet."""
    assert comparison_form("Explosión en fábrica de MONTERREY", "es") == (
        "explosion en fabrica de monterrey"
    )
    assert comparison_form("Straße in İstanbul, Łódź and Zürich", "en") == (
        "strasse in istanbul lodz and zurich"
    )


def test_comparison_form_folds_arabic_spelling() -> None:
    """Harakat, tatweel, alef variants, alef maqsura and ta marbuta fold to one spelling."""
    assert comparison_form("زِلْزَالٌ يَضْرِبُ تُرْكِيَا", "ar") == "زلزال يضرب تركيا"
    assert comparison_form("انفجـــار في القاهرة", "ar") == "انفجار في القاهره"
    assert comparison_form("أإآٱ على مستشفى", "ar") == "اااا علي مستشفي"


def test_comparison_form_keeps_hamza_on_waw_and_yeh() -> None:
    """Only alef hamza variants fold: the spelling of مسؤول is not flattened to مسوول."""
    assert comparison_form("مسؤول رئيس", "ar") == "مسؤول رئيس"


def test_comparison_form_maps_digits_to_ascii() -> None:
    """Arabic-Indic and Eastern Arabic-Indic digits, and thousands separators, normalise."""
    assert comparison_form("مقتل ٥ أشخاص و۳ جنود", "ar") == "مقتل 5 اشخاص و3 جنود"
    assert comparison_form("إجلاء ١٬٥٠٠ شخص", "ar") == "اجلاء 1500 شخص"
    assert comparison_form("1.000 evacuados", "es") == "1000 evacuados"


def test_comparison_form_keeps_decimals_apart_from_integers() -> None:
    """A decimal separator splits the number, so 7.8 and 78 never compare equal."""
    assert comparison_form("Magnitude 7.8 quake", "en") != comparison_form(
        "Magnitude 78 quake", "en"
    )
    assert comparison_form("sismo de 7,8", "es") == comparison_form("sismo de 7.8", "es")


def test_comparison_form_removes_punctuation_and_invisible_marks() -> None:
    """Punctuation, symbols and bidi marks go; apostrophes join the word they are in."""
    text = "\u200fUN chief: 'Gaza is a graveyard' — Israel's PM (again)!"
    assert comparison_form(text, "en") == "un chief gaza is a graveyard israels pm again"


def test_strip_alert_prefix_keeps_the_display_text() -> None:
    """strip_alert_prefix only removes the label; case and punctuation of the rest survive."""
    assert strip_alert_prefix("BREAKING: Fed holds rates, says Powell", "en") == (
        "Fed holds rates, says Powell"
    )


def test_dedupe_key_matches_surface_variants() -> None:
    """Labels, case, punctuation, whitespace and digit scripts do not change the key."""
    key = dedupe_key("مقتل 5 أشخاص في غزة", "ar")
    assert dedupe_key("عاجل: مقتلُ ٥ أشخاصٍ في غزةَ", "ar") == key
    assert dedupe_key("BREAKING: Two killed\nin Jenin!", "en") == dedupe_key(
        "two killed in jenin", "en"
    )


def test_dedupe_key_separates_editions_and_stories() -> None:
    """The same words in another edition, or another story, get another key."""
    assert dedupe_key("Two killed in Jenin", "en") != dedupe_key("Two killed in Jenin", "en-GB")
    assert dedupe_key("Two killed in Jenin", "en") != dedupe_key("Five killed in Jenin", "en")


def test_dedupe_key_is_stable_hex() -> None:
    """The key is a sha256 hex digest that does not change between processes or releases."""
    key = dedupe_key("Two killed in Jenin", "en-GB")
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key == dedupe_key("Two killed in Jenin", "EN-gb")
    # Pinned: if this changes, bump DEDUPE_KEY_VERSION so old and new keys never mix.
    assert key == hashlib.sha256(b"v1\x1fen-gb\x1ftwo killed in jenin").hexdigest()
    assert key == "c9013c1adcc9189dca0e7ef6520d77100c9d0e83d4780ead95a762deed4e912c"


@pytest.mark.parametrize(
    ("edition", "lang"),
    [("en", "en"), ("en-GB", "en"), ("AR", "ar"), ("es-419", "es"), ("es_MX", "es"), ("", "und")],
)
def test_language_of_takes_the_primary_subtag(edition: str, lang: str) -> None:
    """The language of an edition is its lower-cased primary BCP 47 subtag."""
    assert language_of(edition) == lang


@given(_HEADLINES)
def test_display_headline_is_idempotent(text: str) -> None:
    """Normalising a display headline again changes nothing."""
    once = display_headline(text)
    assert display_headline(once) == once


@given(_HEADLINES)
def test_display_headline_never_breaks_lines(text: str) -> None:
    """No line break or tab survives, so a headline can never split an SSE frame."""
    shown = display_headline(text)
    assert not set(shown) & {"\n", "\r", "\t", "\u2028", "\u2029", "\x85"}
    assert shown == shown.strip()
    assert unicodedata.is_normalized("NFC", shown)


@given(_HEADLINES, _LANGS)
def test_comparison_form_is_idempotent(text: str, lang: str) -> None:
    """The comparison form of a comparison form is itself, so keys never drift on re-saves."""
    once = comparison_form(text, lang)
    assert comparison_form(once, lang) == once


@given(_HEADLINES, _LANGS)
def test_comparison_form_ignores_display_normalisation(text: str, lang: str) -> None:
    """Matching the raw input or the stored display form gives the same comparison form."""
    assert comparison_form(display_headline(text), lang) == comparison_form(text, lang)


@given(st.text(st.characters(max_codepoint=127)))
def test_ascii_folds_as_the_general_path_does(text: str) -> None:
    """ASCII skips the per-character folding with the same result: an accented letter after
    it (which sends it down the general path) changes only itself."""
    assert _fold(text + "é") == _fold(text) + "e"
    assert _strip_punctuation(text + "é") == _strip_punctuation(text) + "é"
