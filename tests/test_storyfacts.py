"""Pure tests of story facts and the verdict: each fact class, each rewrite class."""

# Arabic letters and digits are the subject matter here, not look-alike typos.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.matching import MIN_SHARED, compare
from workers.storyfacts import Facts, extract
from workers.storyindex import StoryIndex


def same(a: str, b: str, lang: str = "en") -> bool:
    return compare(extract(a, lang), extract(b, lang)).same


def test_numbers_in_any_script_and_form() -> None:
    """Digits of any script, number words, decimal comma or point, thousands and percent
    forms reduce to one value; ordinals stay apart from counts."""
    assert extract("Three killed in Jenin", "en").numbers == {"3"}
    assert extract("One hundred and five rescued", "en").numbers == {"105"}
    assert extract("Inflation at 6,1 %", "es").numbers == extract("Inflation 6.1%", "en").numbers
    assert extract("US cases hit 1,500", "en").numbers == {"1500"}
    assert extract("22.101 personas", "es").numbers == {"22101"}
    assert extract("Rates held at 4.0 percent", "en").numbers == {"4"}
    assert extract("2,6 por ciento", "es").numbers == {"2.6"}
    assert extract("مقتل ٥ أشخاص", "ar").numbers == extract("مقتل خمسة أشخاص", "ar").numbers
    assert extract("التضخم ١٫٢٪", "ar").numbers == extract("التضخم 1.2 بالمئة", "ar").numbers
    assert extract("Microsoft pays $69bn", "en").numbers == {"69000000000"}
    assert extract("Second night of strikes", "en").numbers == {"#2"}
    assert extract("2nd night of strikes", "en").numbers == {"#2"}
    assert extract("Aprobada la 1ª fase del plan", "es").numbers == {"#1"}


@pytest.mark.parametrize(
    ("a", "b", "lang"),
    [
        ("Three soldiers killed in Niger", "Five soldiers killed in Niger", "en"),
        ("Three soldiers killed in Niger", "Three soldiers killed in Mali", "en"),
        ("French Prime Minister Lecornu resigns", "French Prime Minister Bayrou resigns", "en"),
        ("Apple shares rise 4%", "Samsung shares rise 4%", "en"),
        ("Three soldiers killed in Niger", "Three soldiers wounded in Niger", "en"),
        ("Apple shares rise 4%", "Apple shares fall 4%", "en"),
        ("Trump will meet Putin in Budapest", "Trump will not meet Putin in Budapest", "en"),
        ("Oil jumps 5% after Israel strikes Iran", "Oil jumps 5% after Iran strikes Israel", "en"),
        ("UN council meets on Sudan on Friday", "UN council meets on Sudan on Monday", "en"),
        ("Quake of magnitude 7.8 hits Chile", "Quake of magnitude 78 hits Chile", "en"),
        ("Microsoft to buy Activision for $69bn", "Microsoft to buy Activision for $75bn", "en"),
        ("Second blast hits Beirut port", "Third blast hits Beirut port", "en"),
        (
            "Dozens killed in Khartoum market attack",
            "Hundreds killed in Khartoum market attack",
            "en",
        ),
        # Two places spelt alike are two places, not a spelling drift of one.
        (
            "Three soldiers killed in attack in Niger",
            "Three soldiers killed in attack in Nigeria",
            "en",
        ),
        (
            "Tres soldados muertos en un ataque en Níger",
            "Tres soldados muertos en un ataque en Nigeria",
            "es",
        ),
        ("Flooding in Austria leaves 3 dead", "Flooding in Australia leaves 3 dead", "en"),
        ("Al menos 15 muertos en Gaza", "Al menos 15 heridos en Gaza", "es"),
        ("Petro niega haber recibido fondos", "Petro reconoce haber recibido fondos", "es"),
        ("ارتفاع أسعار النفط بعد الهجوم", "انخفاض أسعار النفط بعد الهجوم", "ar"),
        ("Rusia derriba 41 drones ucranianos", "Ucrania derriba 41 drones rusos", "es"),
        ("مقتل ثلاثة فلسطينيين في جنين", "إصابة ثلاثة فلسطينيين في جنين", "ar"),
        ("مقتل ثلاثة فلسطينيين في جنين", "مقتل ثلاثة فلسطينيين في طولكرم", "ar"),
        ("فرنسا تعترف بدولة فلسطين", "فرنسا لن تعترف بدولة فلسطين", "ar"),
        # A name is no verb: تونس (Tunisia) does not bring يونس (Khan Younis).
        ("غارة إسرائيلية على خان يونس", "غارة إسرائيلية على تونس", "ar"),
    ],
)
def test_a_changed_fact_vetoes(a: str, b: str, lang: str) -> None:
    """A changed number, place, person, organisation, event, actor, date or polarity is a
    different story, both ways round, with a score of 0 and the reason named."""
    for x, y in ((a, b), (b, a)):
        verdict = compare(extract(x, lang), extract(y, lang))
        assert not verdict.same and verdict.score == 0.0
        assert verdict.reason.startswith("different") and verdict.differing


@pytest.mark.parametrize(
    ("a", "b", "lang"),
    [
        (
            "Kremlin: Putin will not attend G20 summit",
            "Putin will not attend G20 summit, Kremlin says",
            "en",
        ),
        ("Putin to skip G20 summit", "Putin will not attend G20 summit", "en"),
        (
            "Apple shares rise 4% after record sales",
            "Apple stock climbs 4% after record sales",
            "en",
        ),
        ("US President Trump to meet Putin", "Trump to meet Putin", "en"),
        (
            "Small plane crashes in Sao Paulo, 2 dead",
            "Small plane crashes in São Paulo, killing two",
            "en",
        ),
        ("U.N. council to meet on Sudan", "United Nations council to meet on Sudan", "en"),
        ("Kiev hit by Russian drone attack", "Kyiv hit by Russian drone attack", "en"),
        (
            "BREAKING: Bank of England holds rates at 4%",
            "Bank of England holds rates at 4.0 percent",
            "en",
        ),
        (
            "La inflación baja al 2,1 % en septiembre",
            "La inflación baja al 2.1% en septiembre",
            "es",
        ),
        ("Apagón masivo en Turquia", "Apagón masivo en Turquía", "es"),
        ("استشهاد ثلاثة فلسطينيين بجنين", "استشهاد 3 فلسطينيين في جنين", "ar"),
        ("عاجل | فرنسا تعترف رسميا بدولة فلسطين", "فرنسا تعترف رسمياً بدولة فلسطين", "ar"),
    ],
)
def test_same_facts_in_other_words(a: str, b: str, lang: str) -> None:
    """Attribution moved, synonyms, titles, accents, decimal forms, abbreviations, Arabic
    clitics and digits: the same story, both ways round."""
    assert same(a, b, lang) and same(b, a, lang)


def test_names_in_an_attribution_are_the_source() -> None:
    """Who says it is not a fact: another source for the same news is the same story."""
    facts = extract("Putin will not attend summit, Kremlin spokesman Peskov says", "en")
    assert [n.text for n in facts.names if n.source] == ["Kremlin", "Peskov"]


def test_forms_and_qualifiers_the_lists_do_not_spell_out() -> None:
    """A listed word's canonical form is folded like the headline's words ("cárcel" meets
    "carcelario"); an organisation naming a role is no new name ("OPEC leader Saudi
    Arabia"); a town's name is not shadowed by a listed phrase made of it (صور, Tyre)."""
    assert same(
        "Motín carcelario en Guayaquil deja 12 presos muertos",
        "Motín en una cárcel de Guayaquil deja 12 presos muertos",
        "es",
    )
    assert same(
        "OPEC leader Saudi Arabia to cut output in January", "Saudi Arabia to cut output in January"
    )
    assert same("NATO chief Rutte visits Kyiv", "Rutte visits Kyiv")
    assert not same(
        "غارة إسرائيلية على صور في جنوب لبنان", "غارة إسرائيلية على النبطية في جنوب لبنان", "ar"
    )


def test_one_person_named_by_two_roles() -> None:
    """Two roles before the same name are one person told two ways; two roles before two
    names, or alone, are two people, whatever else the headlines share."""
    assert same(
        "Chinese leader Xi Jinping meets Biden in San Francisco",
        "President Xi meets Biden in San Francisco",
    )
    assert same(
        "El presidente de EEUU, Donald Trump, llega a Israel", "El líder Trump llega a Israel", "es"
    )
    assert not same(
        "Foreign minister Wadephul meets Rubio", "Defence minister Pistorius meets Rubio"
    )
    assert not same(
        "Foreign minister quits after meeting Putin", "Defence minister quits after meeting Putin"
    )


def test_an_attack_told_by_its_means() -> None:
    """ "Attack" on one side, how it was made on the other (gunfire, a blast, a drone) is
    one story; two different means are two."""
    assert same("Gunmen kill 10 in Burkina Faso", "Attack in Burkina Faso kills 10")
    assert same("Drone kills 2 in Moscow", "Attack kills 2 in Moscow")
    assert same(
        "Un tiroteo en Ciudad de México deja 5 muertos",
        "Un ataque en Ciudad de México deja 5 muertos",
        "es",
    )
    assert not same("Drone kills 2 in Moscow", "Missile kills 2 in Moscow")
    assert not same("Drone attack on Moscow kills 2", "Missile attack on Moscow kills 2")
    assert not same(
        "Un tiroteo en Ciudad de México deja 5 muertos",
        "Una explosión en Ciudad de México deja 5 muertos",
        "es",
    )


def test_a_negation_denies_what_happened_not_where() -> None:
    """A negation covers the event and its words, not the names after it: "no tsunami
    threat to Japan" says nothing against a quake in Japan."""
    assert same("Strong quake hits Japan", "Strong quake hits Japan, no tsunami threat to Japan")
    assert not same(
        "Putin will not travel to South Africa for G20 summit",
        "Putin will travel to South Africa for G20 summit",
    )


def test_a_venue_is_where_not_who() -> None:
    """A town or an organisation after "in", "at" or "في" is where it happened, which a
    rewrite may leave out; another venue in its place still differs."""
    assert same(
        "Pakistan and Afghanistan agree ceasefire after talks",
        "Pakistan and Afghanistan agree ceasefire after talks in Doha",
    )
    assert same(
        "فرنسا تعترف رسميا بدولة فلسطين في الأمم المتحدة",
        "عاجل | فرنسا تعترف رسميا بدولة فلسطين",
        "ar",
    )
    assert not same(
        "Pakistan and Afghanistan agree ceasefire after talks in Istanbul",
        "Pakistan and Afghanistan agree ceasefire after talks in Doha",
    )
    assert not same("Blast in Kabul kills 5", "Blast in Kandahar kills 5")


def test_a_town_and_the_country_that_holds_it() -> None:
    """A town on one side and its country on the other is one place told more or less
    precisely; a town of another country, or a part of the country ("south Lebanon")
    that need not hold the town, still differs."""
    assert same(
        "Putin to skip G20 summit in Johannesburg, Kremlin says",
        "Putin will not travel to South Africa for G20 summit, Kremlin spokesman Peskov says",
    )
    assert same("Explosión en Kabul deja 5 muertos", "Explosión en Afganistán deja 5 muertos", "es")
    assert same("انفجار في الخرطوم يقتل 5 أشخاص", "انفجار في السودان يقتل 5 أشخاص", "ar")
    assert not same("Blast in Kabul kills 5", "Blast in Pakistan kills 5")
    assert not same("Israeli strike in south Lebanon kills 3", "Israeli strike on Beirut kills 3")
    assert not same("غارة إسرائيلية على جنوب لبنان تقتل 3", "غارة إسرائيلية على بيروت تقتل 3", "ar")


def test_a_place_opening_a_headline_is_a_name() -> None:
    """Letter case says nothing of a headline's first word, nor of Title Case or ALL CAPS:
    a country or a large town there is still a name (GeoNames and the CLDR), so another
    place in its stead is another story."""
    assert [n.text for n in extract("Chicago shooting leaves 3 dead", "en").names] == ["Chicago"]
    assert "Barcelona" in [n.text for n in extract("Barcelona registra 3 muertos", "es").names]
    assert "LAGOS" in [n.text for n in extract("LAGOS FLOODS LEAVE 3 DEAD", "en").names]
    assert not same("Paris police arrest 2 over museum heist", "Police arrest 2 over museum heist")
    # ... and a common word is not taken for a town.
    assert extract("Police arrest 2 over museum heist", "en").names == ()


def test_a_new_name_or_development_is_a_new_story() -> None:
    """A name one headline adds outside the attribution, or a new event, is news."""
    assert not same(
        "Court sentences Bolsonaro to 27 years",
        "Court sentences Bolsonaro ally Braga Netto to 27 years",
    )
    assert not same("Israel and Hamas agree deal", "Israel and Hamas sign deal in Sharm el-Sheikh")


@pytest.mark.parametrize(
    ("a", "b", "lang"),
    [
        # A word the lists do not know, put in another's place: the shape of a look-alike.
        ("Saudi Arabia plans to hike oil output", "Saudi Arabia plans to curb oil output", "en"),
        ("Portuguese economy grows 0.1%", "Polish economy grows 0.1%", "en"),
        (
            "Seoul says Pyongyang launched a ballistic missile into the sea",
            "North Korea fires cruise missile into sea, South Korea says",
            "en",
        ),
        (
            "Primer encuentro entre Lula y Milei en la cumbre de Mercosur",
            "Lula y Boric se reúnen por primera vez en la cumbre del Mercosur",
            "es",
        ),
        ("Lakers topple Celtics in overtime", "Celtics topple Lakers in overtime", "en"),
        ("Israel strikes Iran", "Iran attacks Israel", "en"),
        ("El Real Madrid gana al Barcelona 2-1", "El Barcelona gana al Real Madrid 2-1", "es"),
        (
            "Ukrainian air force: 45 out of 60 Russian drones downed overnight",
            "Russia says it shot down 45 of 60 Ukrainian drones overnight",
            "en",
        ),
        # A negation that denies what the other says; a toll is not a rise of its own.
        (
            "Quake hits Sumatra, tsunami warning issued",
            "Quake hits Sumatra, no tsunami warning",
            "en",
        ),
        ("Pope Francis admitted to hospital", "Pope Francis discharged from hospital", "en"),
        ("Colombia expulsa al embajador israelí", "Colombia expulsa al embajador de EEUU", "es"),
    ],
)
def test_an_unknown_word_swapped_or_a_crossed_actor_vetoes(a: str, b: str, lang: str) -> None:
    """Where the lists know nothing of the changed word the headline's shape still shows
    it: one word in another's slot, two names around a verb in the other order."""
    for x, y in ((a, b), (b, a)):
        verdict = compare(extract(x, lang), extract(y, lang))
        assert not verdict.same and verdict.reason.startswith("different")


@pytest.mark.parametrize(
    ("a", "b", "lang"),
    [
        ("Quake of magnitude 6.4 hits Sumatra, no tsunami warning", "6.4 quake hits Sumatra", "en"),
        ("Bank of Japan raises rates to 0.5%", "BOJ hikes interest rates to 0.5%", "en"),
        (
            "La OEA condena el golpe en Bolivia",
            "La Organización de Estados Americanos condena el golpe en Bolivia",
            "es",
        ),
        ("Zelenskiy meets Trump in Washington", "Zelensky meets Trump in Washington", "en"),
        ("Twenty-five killed in bus crash in Kenya", "25 killed in bus crash in Kenya", "en"),
        (
            "Ukraine says it shot down 45 of 60 Russian drones overnight",
            "Ukrainian air force: 45 out of 60 Russian drones downed overnight",
            "en",
        ),
        (
            "Volcano erupts in Iceland, forcing evacuation of Grindavik",
            "Grindavik evacuated as volcanic eruption begins in Iceland",
            "en",
        ),
        ("مقتل ثلاثمئة شخص في فيضانات", "مقتل 300 شخص في فيضانات", "ar"),
        ("ترامب يلتقي بوتين في ألاسكا", "ترمب يلتقي بوتين في ألاسكا", "ar"),
        ("Microsoft to cut 6,000 jobs", "Microsoft announces 6,000 job cuts", "en"),
        ("Nigeria's central bank raises rate to 27.5%", "Nigeria lifts key rate to 27.5%", "en"),
        (
            "French police detain 12 at Paris climate protest",
            "Police arrest 12 at Paris climate protest",
            "en",
        ),
        (
            "ارتفاع حصيلة ضحايا السيول في اليمن إلى 45 قتيلا",
            "السيول في اليمن تودي بحياة 45 شخصا",
            "ar",
        ),
        # A phrase's word with a clitic ("ويودي بحياة") is the phrase's word.
        ("زلزال يهز المغرب ويودي بحياة العشرات", "زلزال يهز المغرب ويقتل العشرات", "ar"),
        ("Un terremoto sacude Perú sin causar víctimas", "Un terremoto sacude Perú", "es"),
        ("Quake leaves 5 dead in Peru", "Quake kills 5 in Peru", "en"),
        ("Death toll in Kabul rises to 45", "Blast kills 45 in Kabul", "en"),
        (
            "Desarticulada una red de narcotráfico en Cádiz",
            "La Policía desarticula una red de narcotráfico en Cádiz",
            "es",
        ),
    ],
)
def test_the_same_facts_told_otherwise(a: str, b: str, lang: str) -> None:
    """A negation of what the other does not say, abbreviations, transliterations, words
    of two event classes, a country naming an institution, a toll that rises, a Spanish
    opening participle: the same story, both ways round."""
    assert same(a, b, lang) and same(b, a, lang)


def test_facts_round_trip_through_json() -> None:
    """Facts kept beside an item in Redis read back equal."""
    facts = extract("Oil jumps 5% after President Trump orders Iran strikes, Reuters says", "en")
    assert facts.titled and Facts.from_json(facts.to_json()) == facts
    # Facts kept by an earlier release, before roles were tied to names, still read.
    older = {k: v for k, v in facts.to_json().items() if k != "titled"}
    assert Facts.from_json(older).titled == frozenset()


@given(st.text(max_size=80), st.sampled_from(["en", "es", "ar", "fr"]))
def test_any_text_is_the_same_story_as_itself(text: str, lang: str) -> None:
    """Any text, in any edition, extracts without error, never differs from itself, and
    matches itself once it says enough (MIN_SHARED)."""
    facts = extract(text, lang)
    verdict = compare(facts, facts)
    assert not verdict.reason.startswith("different")
    assert verdict.same == (sum(facts.content.values()) >= MIN_SHARED)


def test_a_common_word_alone_is_not_a_story() -> None:
    """Two short headlines that share one common word are not one story."""
    assert not same("Health item", "Politics item")
    assert not same("Before the outage", "During the outage")


def test_the_index_finds_a_rewrite_among_many_stories() -> None:
    """Among thousands of indexed stories the rewrite is found, the look-alike is not, and
    items older than the window leave the index."""
    index = StoryIndex(window_ms=3_600_000)
    for i in range(3000):
        index.add(f"x{i}", "en", i, extract(f"{i} killed in attack on village {i}", "en"))
    index.add("niger", "en", 3_000_000, extract("Three soldiers killed in attack in Niger", "en"))
    found = index.best("en", extract("Attack in Niger kills three soldiers", "en"))
    assert found is not None and found[0] == "niger"
    assert index.best("en", extract("Three soldiers wounded in attack in Niger", "en")) is None
    index.add("late", "en", 3_700_000, extract("Unrelated story", "en"))
    assert "x0" not in index and "niger" in index
