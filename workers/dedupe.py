"""Pure near-duplicate scoring of breaking headlines (English, Arabic, Spanish), no I/O.

Two headlines are near-duplicates when all of these hold:

1. the same numbers: digits and number words ("two", "dos", "اثنان", "2" and "٢" are all 2,
   "dozens" and "second" are kept as vague and ordinal), so "Two killed in Jenin" is not
   "Five killed in Jenin";
2. the same names: a word capitalised mid-sentence must appear in the other headline, so
   "Two killed in Jenin" is not "Two killed in Nablus"; where case says nothing (Arabic, the
   first word, Title Case, ALL CAPS) uncommon words are maybe-names, and a maybe-name missing
   on *each* side is a substitution (غزة for رفح), while one side only is an added detail;
3. the same polarity: both or neither negated ("not", "niega", "لم"), and no opposite
   directions ("rise"/"fall", "يرفع"/"يخفض");
4. a fuzzy score, the mean of rapidfuzz ``token_set_ratio`` and ``token_sort_ratio`` of the
   comparison forms without stopwords, at or above the threshold (:data:`DEFAULT_THRESHOLD`
   unless the caller says otherwise).

The guards put precision first: when in doubt a headline is published, because swallowing a
new development is worse than showing a reworded one twice. Known blind spots: swapped roles
("A beat B" / "B beat A") and synonyms of names ("BCE" / "Banco Central Europeo"). Pass
*display* headlines (as stored), not comparison forms: letter case is the evidence of a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from workers.normalise import comparison_form, display_headline, language_of, strip_alert_prefix

__all__ = ["DEFAULT_THRESHOLD", "best_match", "is_near_duplicate", "similarity"]

# On tests/data/dedupe_corpus.json, rewordings that pass the guards score 90-100 (one 77) and
# other stories that pass them (same names, another event, a new development) 74-84.
DEFAULT_THRESHOLD = 88.0

# "word=value" lists, folded with comparison_form when loaded. "~" marks vague quantities
# ("dozens"): equal only to themselves. "#" marks ordinals ("second blast" is not "third").
_NUMBERS = {
    "en": "one=1 two=2 three=3 four=4 five=5 six=6 seven=7 eight=8 nine=9 ten=10 eleven=11 "
    "twelve=12 thirteen=13 fourteen=14 fifteen=15 sixteen=16 seventeen=17 eighteen=18 "
    "nineteen=19 twenty=20 thirty=30 forty=40 fifty=50 sixty=60 seventy=70 eighty=80 "
    "ninety=90 dozen=12 hundred=100 thousand=1000 million=1000000 billion=1000000000 "
    "dozens=~12 hundreds=~100 thousands=~1000 millions=~1000000 scores=~20 first=#1 "
    "second=#2 third=#3 fourth=#4 fifth=#5 sixth=#6 seventh=#7 eighth=#8 ninth=#9 tenth=#10",
    # "un"/"una" are left out: they are the article far more often than the number.
    "es": "uno=1 dos=2 tres=3 cuatro=4 cinco=5 seis=6 siete=7 ocho=8 nueve=9 diez=10 once=11 "
    "doce=12 trece=13 catorce=14 quince=15 dieciséis=16 diecisiete=17 dieciocho=18 "
    "diecinueve=19 veinte=20 veintiuno=21 veintidós=22 veintitrés=23 veinticuatro=24 "
    "veinticinco=25 veintiséis=26 veintisiete=27 veintiocho=28 veintinueve=29 treinta=30 "
    "cuarenta=40 cincuenta=50 sesenta=60 setenta=70 ochenta=80 noventa=90 cien=100 "
    "ciento=100 doscientos=200 trescientos=300 cuatrocientos=400 quinientos=500 "
    "seiscientos=600 setecientos=700 ochocientos=800 novecientos=900 mil=1000 "
    "millón=1000000 millones=1000000 decenas=~10 centenares=~100 cientos=~100 miles=~1000 "
    "docena=12 primer=#1 primero=#1 primera=#1 segundo=#2 segunda=#2 tercer=#3 tercero=#3 "
    "tercera=#3 quinto=#5 quinta=#5 sexto=#6 sexta=#6",
    # واحد (one) is left out: stripped of its clitic it is أحد, "Sunday" or "one of".
    "ar": "اثنان=2 اثنين=2 اثنتان=2 اثنتين=2 ثلاثة=3 ثلاث=3 أربعة=4 أربع=4 خمسة=5 خمس=5 "
    "ستة=6 ست=6 سبعة=7 سبع=7 ثمانية=8 ثماني=8 ثمان=8 تسعة=9 تسع=9 عشرة=10 عشر=10 "
    "عشرون=20 عشرين=20 ثلاثون=30 ثلاثين=30 أربعون=40 أربعين=40 خمسون=50 خمسين=50 ستون=60 "
    "ستين=60 سبعون=70 سبعين=70 ثمانون=80 ثمانين=80 تسعون=90 تسعين=90 مئة=100 مائة=100 "
    "ألف=1000 آلاف=1000 مليون=1000000 ملايين=1000000 مليار=1000000000 عشرات=~10 مئات=~100 "
    "أول=#1 أولى=#1 ثاني=#2 ثانية=#2 ثالث=#3 ثالثة=#3 رابع=#4 رابعة=#4 خامس=#5 خامسة=#5",
}
_CONNECTORS = {"and", "y", "e"}  # "one hundred and five", "treinta y cinco"
_SUFFIXED = re.compile(r"^(\d+)(k|m|mn|bn)$")  # "$5bn", "10m"
_SUFFIX_SCALE = {"k": 1000, "m": 10**6, "mn": 10**6, "bn": 10**9}

_NEGATIONS = {
    "en": "not no never nor without cannot cant dont doesnt didnt wont isnt arent wasnt "
    "werent hasnt havent wouldnt couldnt shouldnt deny denies denied",
    "es": "no nunca ni sin tampoco niega niegan negó descarta descartan",
    "ar": "لا لم لن ليس ليست غير دون بدون عدم ينفي تنفي نفى نفت",
}

# Opposite directions: "Stocks rise" and "Stocks fall" share every name and most words.
# Each entry is "up-words/down-words"; a headline with only one side conflicts with one with
# only the other; a side missing from one headline is no conflict ("toll rises to 9" vs "9 dead").
_POLARITY = {
    "en": "rise rises rising rose up jump jumps surge surges soar soars gain gains climb climbs "
    "higher/fall falls falling fell down drop drops plunge plunges slump slumps sink sinks "
    "lower tumble tumbles|win wins won/lose loses lost|raise raises hike hikes/cut cuts "
    "lowers|open opens opened reopens reopened/close closes closed shut shuts|approve "
    "approves approved passes passed/reject rejects rejected blocks blocked|lift lifts "
    "lifted/impose imposes imposed",
    "es": "sube suben subió aumenta aumentan dispara disparan repunta/baja bajan bajó cae caen "
    "cayó desploma desploman|gana ganan ganó/pierde pierden perdió|abre abren reabre/cierra "
    "cierran|aprueba aprueban aprobó/rechaza rechazan rechazó tumba|levanta/impone",
    "ar": "ارتفاع يرتفع ترتفع ارتفعت يرفع ترفع رفع صعود/انخفاض ينخفض تنخفض انخفضت يخفض تخفض "
    "خفض تراجع يتراجع تتراجع هبوط|فوز يفوز تفوز فاز/خسارة يخسر تخسر خسر هزيمة|فتح يفتح تفتح "
    "إعادة/إغلاق يغلق تغلق أغلق|يوافق توافق موافقة/يرفض ترفض رفض|رفع/فرض يفرض تفرض",
}

# Function words: never names, and noise for the fuzzy score.
_STOPWORDS = {
    "en": "a an the and or but of in on at to for from by with as into onto over under after "
    "before amid about against between during near off out up down via per than then that "
    "this these those it its is are was were be been being has have had will would can could "
    "may might shall should must do does did also he she they we you his her their our who "
    "what which when where why how all any some more most other such only so too very just "
    "al el la de da du le",
    "es": "el la los las lo un una unos unas de del al a en y e o u por para con sobre tras "
    "ante entre hasta desde durante contra según que se su sus es son fue era ha han había "
    "será le les este esta estos estas ese esa esos esas como más muy ya también pero cuando "
    "donde tras otro otra otros otras",
    "ar": "في من الى إلى على عن مع بعد قبل خلال حول ضد بين أمام عند منذ حتى أو ثم أن إن أنه "
    "إنه الذي التي الذين هذا هذه ذلك تلك هو هي هم كان كانت يكون تكون قد لقد كل بعض عبر لدى "
    "وسط إثر جراء بسبب نحو حيث كما أيضا أي له لها لهم به بها فيه فيها منه منها عليه "
    "عليها ما",
}

# Common headline vocabulary: capitalised at the start of a headline or in Title Case, and
# the only way to tell names from words in Arabic, which has no letter case.
_VOCABULARY = {
    "en": "killed kill kills killing dead death deaths died dies die injured injures wounded "
    "hurt people person civilians children men women soldiers troops police officers "
    "officials official minister ministry president prime pm government army military forces "
    "leader leaders spokesman source sources report reports reported says say said tells "
    "told announces announced confirms confirmed warns warned calls called urges vows plans "
    "agrees agreed rejects rejected claims attack attacks attacked strike strikes struck raid "
    "raids airstrike airstrikes blast explosion bomb bombing fire fires shooting gunman gunmen "
    "clashes protest protests protesters quake earthquake magnitude storm flood floods "
    "hurricane cyclone typhoon wildfire wildfires crash collapse ceasefire truce talks deal "
    "agreement election elections vote wins win won loses lost resigns resignation arrested "
    "arrest charged court trial sentenced jail prison hospital health rescue rescuers missing "
    "hostages hostage released release border city town village capital region north south "
    "east west northern southern eastern western central coast least toll rises rise falls "
    "fall rates rate bank market markets stocks shares prices oil inflation economy year "
    "years day days week month hours today tonight yesterday monday tuesday wednesday "
    "thursday friday saturday sunday morning night breaking news update live latest new "
    "hits hit kills amid against state national international us un",
    "es": "muertos muerto muertas muerta fallecidos fallecen mueren muere heridos herido "
    "víctimas personas niños mujeres hombres soldados policía policías agentes militares "
    "ejército gobierno presidente presidenta ministro ministra ministerio ataque ataques "
    "atentado bombardeo bombardeos explosión incendio incendios tiroteo enfrentamientos "
    "protesta protestas manifestantes terremoto sismo magnitud tormenta inundaciones huracán "
    "accidente derrumbe alto fuego tregua acuerdo elecciones votación gana ganan pierde "
    "dimite renuncia detenido detenidos arrestado juicio condenado cárcel hospital salud "
    "rescate desaparecidos rehenes liberados frontera ciudad pueblo capital región norte sur "
    "este oeste cerca costa menos balance sube aumenta cae bajan precios mercado bolsa "
    "economía año años día días semana hoy ayer lunes martes miércoles jueves viernes sábado "
    "domingo noche mañana última hora noticia dice dicen afirma anuncia confirma advierte "
    "informa según deja dejan sacude golpea mata matan menos al nuevo nueva",
    "ar": "قتل مقتل قتلى قتيل يقتل تقتل مصرع إصابة إصابات جرحى جريح مصابين مصابون أصيب أصيبوا "
    "هجوم هجمات انفجار انفجارات غارة غارات قصف ضربة ضربات اشتباكات احتجاجات متظاهرين "
    "مظاهرات زلزال هزة بقوة درجات درجة عاصفة فيضانات فيضان إعصار حريق حرائق تحطم انهيار "
    "حادث وقف إطلاق النار هدنة محادثات مفاوضات اتفاق صفقة انتخابات تصويت يفوز فوز خسارة "
    "استقالة يستقيل اعتقال اعتقل القبض محكمة محاكمة حكم سجن مستشفى الصحة وزارة وزير وزيرة "
    "رئيس رئيسة حكومة جيش قوات الشرطة مسؤول مسؤولون مسؤولين مصدر مصادر متحدث باسم أعلن أعلنت "
    "يعلن تعلن قال قالت يقول تقول أكد أكدت تؤكد يؤكد أفاد أفادت حذر يحذر دعا يدعو وكالة "
    "أنباء تقرير تقارير شخص أشخاص شخصا مدنيين مدنيون أطفال نساء جنود جندي عناصر مسلحين مسلح "
    "رهائن رهينة أسرى سراح الإفراج مفقودين مفقود إنقاذ الحدود مدينة بلدة قرية العاصمة منطقة "
    "شمال جنوب شرق غرب شمالي جنوبي شرقي غربي قرب بالقرب حصيلة ارتفاع ترتفع يرتفع انخفاض "
    "أسعار سوق الأسواق البورصة النفط التضخم الاقتصاد عام سنوات يوم أيام أسبوع شهر ساعة ساعات "
    "الأحد الاثنين الإثنين الثلاثاء الأربعاء الخميس الجمعة السبت صباح مساء ليلة عاجل خبر "
    "أخبار الأقل أقل أكثر جديد جديدة منزل مبنى سيارة مفخخة طائرة مسيرة صاروخ صواريخ طائرات "
    "يضرب ضرب تضرب ترتفع يسفر تسفر أسفر أسفرت يصل تصل وصول يصلون",
}

# Arabic clitics: wa-/fa- (and), bi-/li-/ka- (in, to, like), al- (the). Stripped repeatedly
# while three letters remain, identically on both sides, so "بغزة" and "في غزة" meet.
_AR_CLITIC = re.compile(r"^(?:وال|بال|فال|كال|لل|ال|و|ف|ب|ل|ك)")


@dataclass(frozen=True, slots=True)
class _Features:
    tokens: frozenset[str]
    content: str
    numbers: frozenset[str]
    directions: frozenset[tuple[int, int]]  # (polarity pair, side)
    names: frozenset[str]  # capitalised mid-sentence: must appear in the other headline
    maybe_names: frozenset[str]  # uncommon words where case says nothing (first word, Arabic)
    negated: bool


def _lang(lang: str) -> str:
    # Edition tags are accepted ("es-419" -> "es"); unknown languages get the English lists,
    # since agency copy and names still work with them.
    lang = language_of(lang)
    return lang if lang in _NUMBERS else "en"


def _stem(token: str, lang: str) -> str:
    if lang != "ar":
        return token
    while (m := _AR_CLITIC.match(token)) and len(token) - m.end() >= 3:
        token = token[m.end() :]
    return token


def _tokens(text: str, lang: str) -> list[str]:
    return [_stem(t, lang) for t in comparison_form(text, lang).split()]


@dataclass(frozen=True, slots=True)
class _Lexicon:
    numbers: dict[str, str]  # folded word -> "2", "~100" (vague) or "#2" (ordinal)
    directions: dict[str, tuple[int, int]]  # folded word -> (polarity pair, side)
    negations: frozenset[str]
    stopwords: frozenset[str]
    common: frozenset[str]  # everything that is never a name


@lru_cache(maxsize=8)
def _lexicon(lang: str) -> _Lexicon:
    # Word lists go through the same folding as headlines, so they are written naturally.
    numbers: dict[str, str] = {}
    for pair in _NUMBERS[lang].split():
        word, value = pair.split("=")
        numbers[_stem(comparison_form(word, lang), lang)] = value

    def fold(words: str) -> frozenset[str]:
        return frozenset(t for w in words.split() for t in _tokens(w, lang))

    directions = {
        tok: (pair, side)
        for pair, sides in enumerate(_POLARITY[lang].split("|"))
        for side, words in enumerate(sides.split("/"))
        for tok in fold(words)
    }
    negations, stopwords = fold(_NEGATIONS[lang]), fold(_STOPWORDS[lang])
    common = fold(_VOCABULARY[lang]) | negations | stopwords | set(directions) | set(numbers)
    return _Lexicon(numbers, directions, negations, stopwords, common)


def _numbers(tokens: list[str], table: dict[str, str]) -> frozenset[str]:
    # A run of number words (and digits they scale: "5 mil", "2 million") is one value;
    # "2,5 millones" stays two values ("2" and "5000000"), which is consistent on both sides.
    found: set[str] = set()
    total = current = last_scale = 0
    in_run = False

    def flush() -> None:
        nonlocal total, current, last_scale, in_run
        if in_run:
            found.add(str(total + current))
        total = current = last_scale = 0
        in_run = False

    for tok in tokens:
        value = table.get(tok)
        if value is not None and value[0] in "~#":
            flush()
            found.add(value)
            continue
        if tok.isdigit():
            flush()
            current, in_run = int(tok), True
            continue
        if suffixed := _SUFFIXED.match(tok):
            flush()
            found.add(str(int(suffixed.group(1)) * _SUFFIX_SCALE[suffixed.group(2)]))
            continue
        if value is None:
            if not (in_run and tok in _CONNECTORS):
                flush()
            continue
        number, in_run = int(value), True
        if number == 100:
            current = (current or 1) * 100
        elif number >= 1000:
            if number > last_scale:
                total = (total + current or 1) * number
            else:
                total += (current or 1) * number
            current, last_scale = 0, number
        else:
            current += number
    flush()
    return frozenset(found)


def _is_cased(char: str) -> bool:
    return char.isupper() or char.islower()


def _is_number(token: str) -> bool:
    return token.isdigit() or _SUFFIXED.match(token) is not None


def _salient(text: str, lang: str, skip: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Return (names, maybe-names): tokens capitalised mid-sentence, and uncommon tokens.

    Letter case is trusted only in sentence-case text. The first word, words in scripts with
    no case (Arabic), and every word of a Title Case or ALL CAPS headline are maybe-names when
    they are in none of the word lists: numbers, negations, stopwords, common vocabulary.
    """
    words = strip_alert_prefix(display_headline(text), lang).split()
    # Title Case and ALL CAPS make every word look like a name; short words ("of", "in") are
    # left out of the vote because Title Case styles keep them lower case.
    cased = [w for w in words[1:] if len(w) > 3 and any(map(_is_cased, w))]
    upper = [w for w in cased if w[0].isupper()]
    shouting = text.upper() == text and any(map(_is_cased, text))
    case_informative = not shouting and (len(cased) < 2 or len(upper) / len(cased) < 0.75)
    names: set[str] = set()
    maybe: set[str] = set()
    for i, word in enumerate(words):
        letters = [c for c in word if c.isalpha()]
        has_case = any(map(_is_cased, letters))
        if case_informative and i > 0 and has_case and letters[0].islower():
            continue
        found = names if case_informative and i > 0 and has_case else maybe
        found.update(t for t in _tokens(word, lang) if t not in skip and not _is_number(t))
    return frozenset(names), frozenset(maybe - names)


def _canonical(token: str, lex: _Lexicon) -> str:
    if token in lex.directions:
        return "^{}{}".format(*lex.directions[token])
    return lex.numbers.get(token, token)


def _features(headline: str, lang: str) -> _Features:
    lang = _lang(lang)
    lex = _lexicon(lang)
    tokens = _tokens(headline, lang)
    # Number words score as digits and direction words as their direction, so "five" for "5"
    # or "jump" for "surge" costs a rewording no points.
    content = [_canonical(t, lex) for t in tokens if t not in lex.stopwords] or tokens
    # Arabic joins "and" to a negation ("ولم"), which is too short to lose its clitic in _stem.
    bare = [t[1:] if lang == "ar" and t[0] in "وف" else t for t in tokens]
    names, maybe_names = _salient(headline, lang, lex.common)
    return _Features(
        tokens=frozenset(tokens),
        content=" ".join(content),
        numbers=_numbers(tokens, lex.numbers),
        directions=frozenset(lex.directions[t] for t in tokens if t in lex.directions),
        names=names,
        maybe_names=maybe_names,
        negated=any(t in lex.negations for t in tokens + bare),
    )


def _is_suffix(short: int, long: int) -> bool:
    # "iran"/"iranian", "sudan"/"sudanese"; three-letter stems only take short endings
    # ("عراق"/"عراقي", Arabic feminine "اسع"/"اسعه" once clitics are gone).
    return (short >= 4 and long - short <= 3) or (short == 3 and long - short <= 2)


def _present(name: str, tokens: frozenset[str]) -> bool:
    # Tolerate inflection and spelling drift of one name: "Zelensky"/"Zelenskyy", "Iraq"/"Iraqi",
    # "فلسطيني"/"فلسطينيين"; but "Iran"/"Iraq" or "Austria"/"Australia" differ.
    for tok in tokens:
        short, long = sorted((name, tok), key=len)
        if tok == name or (long.startswith(short) and _is_suffix(len(short), len(long))):
            return True
        if len(short) >= 6 and fuzz.ratio(name, tok) >= 90:
            return True
    return False


def _score(a: _Features, b: _Features) -> float:
    if a.tokens == b.tokens:
        return 100.0
    if a.numbers != b.numbers or a.negated != b.negated:
        return 0.0
    # Opposite directions conflict only when each is on one side alone: "rises" against
    # "falls", but not "rises after falling" against "falls".
    only_b = b.directions - a.directions
    if any((pair, 1 - side) in only_b for pair, side in a.directions - b.directions):
        return 0.0
    a_missing = {n for n in a.names | a.maybe_names if not _present(n, b.tokens)}
    b_missing = {n for n in b.names | b.maybe_names if not _present(n, a.tokens)}
    if a_missing & a.names or b_missing & b.names:
        return 0.0
    # An uncommon word on one side only is usually a rewording or an added detail; one on
    # each side is a substitution ("غزة" for "رفح", "Putin" for "Modi" in Title Case).
    if a_missing and b_missing:
        return 0.0
    # token_set_ratio alone is 100 whenever one headline's words are a subset of the other's,
    # which would swallow developments ("Fire at plant" -> "Fire at plant, workers trapped");
    # averaging with token_sort_ratio charges for the extra words without minding word order.
    set_score = fuzz.token_set_ratio(a.content, b.content)
    return float(set_score + fuzz.token_sort_ratio(a.content, b.content)) / 2


def similarity(a: str, b: str, lang: str) -> float:
    """Return 0-100: the fuzzy score of two headlines, 0 when a number, name or polarity differs."""
    return _score(_features(a, lang), _features(b, lang))


def is_near_duplicate(a: str, b: str, lang: str, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Return whether two display headlines of one language tell the same story."""
    return similarity(a, b, lang) >= threshold


def best_match(
    headline: str,
    candidates: Iterable[tuple[str, str]],
    lang: str,
    threshold: float = DEFAULT_THRESHOLD,
) -> str | None:
    """Return the id of the candidate ``(id, headline)`` most similar to ``headline``, if any."""
    mine = _features(headline, lang)
    best_id: str | None = None
    best = threshold
    for candidate_id, text in candidates:
        score = _score(mine, _features(text, lang))
        # On a tie the earlier candidate stays: callers order candidates by preference
        # (oldest first points a duplicate at the original report).
        if score > best or (best_id is None and score >= best):
            best_id, best = candidate_id, score
    return best_id
