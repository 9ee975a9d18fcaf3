"""Our Presidio recognizers, where Presidio's defaults are weak (about half the people and addresses of
synthetic text) or need the network (its e-mail recognizer asks ``tldextract`` for the public suffix list).

Each is a small ``EntityRecognizer`` over regexes with capture groups: the span reported is group 1 when the
pattern has one (``Mr. [Smith]``, ``my name is [Ana Lima]``), else the whole match.
"""

from __future__ import annotations

import re

from presidio_analyzer import EntityRecognizer, RecognizerResult

_NAME = r"[A-Z][a-z'\u2019-]+(?:\s+[A-Z][a-z'\u2019-]+){0,2}"
_STREET_WORDS = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|square|sq|terrace|"
    "parkway|pkwy|highway|hwy|circle|cir|crescent|close|alley|row|trail|loop|plaza|walk|gardens|hill|mews"
)
_EU_SUFFIX = (
    "straße|strasse|str\\.|gasse|weg|vägen|vagen|gatan|katu|tie|laan|straat|plein|vej|gade|veien|gata|allee|"
    "platz|ring|utca|ulica|cesta|tér|torget|stræde|polku|kuja|rinne|kaari|väylä|markt|damm|ufer"
)
_EU_PREFIX = "rue|via|viale|piazza|calle|avenida|rua|carrer|plaza|paseo|boulevard|chaussée|ulitsa|ul\\."
_UNIT = r"(?:,?\s*(?:apt|apartment|suite|ste|unit|floor|fl|#)\.?\s*[\w-]+)?"

#: Countries and large cities: spaCy's small model misses many of them in short, lower-context sentences.
_PLACES = (
    "Afghanistan|Albania|Algeria|Andorra|Angola|Argentina|Armenia|Australia|Austria|Azerbaijan|Bahamas|Bahrain|"
    "Bangladesh|Barbados|Belarus|Belgium|Belize|Benin|Bhutan|Bolivia|Bosnia|Botswana|Brazil|Brunei|Bulgaria|"
    "Burundi|Cambodia|Cameroon|Canada|Chad|Chile|China|Colombia|Congo|Costa Rica|Croatia|Cuba|Cyprus|Czechia|"
    "Czech Republic|Denmark|Djibouti|Dominica|Ecuador|Egypt|El Salvador|Eritrea|Estonia|Eswatini|Ethiopia|Fiji|"
    "Finland|France|Gabon|Gambia|Georgia|Germany|Ghana|Greece|Greenland|Grenada|Guatemala|Guinea|Guyana|Haiti|"
    "Honduras|Hungary|Iceland|India|Indonesia|Iran|Iraq|Ireland|Israel|Italy|Jamaica|Japan|Jordan|Kazakhstan|"
    "Kenya|Kiribati|Kosovo|Kuwait|Kyrgyzstan|Laos|Latvia|Lebanon|Lesotho|Liberia|Libya|Liechtenstein|Lithuania|"
    "Luxembourg|Madagascar|Malawi|Malaysia|Maldives|Mali|Malta|Mauritania|Mauritius|Mexico|Moldova|Monaco|"
    "Mongolia|Montenegro|Morocco|Mozambique|Myanmar|Namibia|Nauru|Nepal|Netherlands|New Zealand|Nicaragua|Niger|"
    "Nigeria|North Korea|North Macedonia|Norway|Oman|Pakistan|Palau|Palestine|Panama|Papua New Guinea|Paraguay|"
    "Peru|Philippines|Poland|Portugal|Qatar|Romania|Russia|Rwanda|Samoa|San Marino|Saudi Arabia|Senegal|Serbia|"
    "Seychelles|Sierra Leone|Singapore|Slovakia|Slovenia|Somalia|South Africa|South Korea|South Sudan|Spain|"
    "Sri Lanka|Sudan|Suriname|Sweden|Switzerland|Syria|Taiwan|Tajikistan|Tanzania|Thailand|Togo|Tonga|Tunisia|"
    "Turkey|Türkiye|Turkmenistan|Tuvalu|Uganda|Ukraine|United Arab Emirates|United Kingdom|United States|"
    "Uruguay|Uzbekistan|Vanuatu|Venezuela|Vietnam|Viet Nam|Yemen|Zambia|Zimbabwe|England|Scotland|Wales|USA|UK|"
    "London|Paris|Berlin|Madrid|Rome|Lisbon|Dublin|Amsterdam|Brussels|Vienna|Prague|Warsaw|Budapest|Athens|"
    "Stockholm|Oslo|Copenhagen|Helsinki|Reykjavik|Zurich|Geneva|Munich|Hamburg|Frankfurt|Milan|Barcelona|"
    "Moscow|Istanbul|Cairo|Lagos|Nairobi|Johannesburg|Cape Town|Dubai|Mumbai|Delhi|New Delhi|Bangalore|"
    "Karachi|Dhaka|Bangkok|Jakarta|Manila|Singapore|Hong Kong|Shanghai|Beijing|Tokyo|Osaka|Seoul|Sydney|"
    "Melbourne|Auckland|Wellington|Toronto|Montreal|Vancouver|New York|Los Angeles|Chicago|Houston|Boston|"
    "Seattle|San Francisco|Miami|Atlanta|Denver|Dallas|Phoenix|Washington|Mexico City|Bogota|Lima|Santiago|"
    "Buenos Aires|São Paulo|Sao Paulo|Rio de Janeiro|Montevideo|Caracas|Havana"
)

PATTERNS: dict[str, list[tuple[str, re.Pattern[str], float]]] = {
    "EMAIL_ADDRESS": [
        ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"), 0.9)
    ],
    "LOCATION": [
        (
            "street_address",
            re.compile(
                rf"\b\d{{1,6}}[A-Za-z]?(?:\s+[A-Z0-9][\w'.-]*){{1,4}}\s+(?i:{_STREET_WORDS})\b\.?{_UNIT}", re.UNICODE
            ),
            0.75,
        ),
        ("eu_street", re.compile(rf"\b[A-ZÀ-Þ][\w-]*(?i:{_EU_SUFFIX})\s+\d{{1,5}}[A-Za-z]?\b{_UNIT}"), 0.7),
        ("eu_street_prefix", re.compile(rf"\b(?i:{_EU_PREFIX})\s+(?:[A-ZÀ-Þ][\w'-]*\s*){{1,3}}\d{{0,5}}"), 0.6),
        ("po_box", re.compile(r"\b(?i:p\.?\s?o\.?\s+box)\s+\d+\b"), 0.7),
        # "6750 Koskikatu 25", "99449 18 McPherson ...": a house number, capitalised words, another number.
        ("numbered_street", re.compile(r"\b\d{1,6}\s+[A-ZÀ-Þ][\w'-]+(?:\s+[A-ZÀ-Þ][\w'.-]+){0,3}\s+\d{1,5}\b"), 0.6),
        ("place", re.compile(rf"\b(?:{_PLACES})\b"), 0.6),
    ],
    "PERSON": [
        # Context beats the NER's guess: scores above spaCy's 0.85, so "I am Ana Lima" is a person, not Lima.
        ("title", re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord)\.?\s+({_NAME})"), 0.9),
        ("named", re.compile(rf"\b(?i:my name is|name's|named|called|signed|regards,|sincerely,)\s+({_NAME})"), 0.9),
        ("introduced", re.compile(rf"\b(?i:i am|i'm|this is|thanks,)\s+({_NAME})"), 0.86),
        ("name_field", re.compile(rf"\b(?i:name|contact|patient|customer|employee|user)\s*:\s*({_NAME})"), 0.9),
    ],
}

#: Words that follow "I am"/"this is" and are not names (sentence starts are capitalised).
_NOT_NAMES = {"Not", "So", "The", "A", "An", "Very", "Sorry", "Here", "Just", "Still", "Also", "Going", "It"}


#: What may follow a street on the same or the next lines: unit, city, region code, country, postcode.
_ADDRESS_TAIL = re.compile(
    r"([ \t]*\n[ \t]*,?[ \t]*|[ \t]*,[ \t]*|[ \t]+)"
    r"(?:(?i:apt|apartment|suite|ste|unit|box)\.?\s*\d+|\d{4,6}\b|[A-Z]{2,3}\b|"
    r"[A-ZÀ-Þ][\w'.-]+(?:[ \t]+[A-ZÀ-Þ][\w'.-]+){0,3})"
)


def extend_address(text: str, end: int, limit: int = 6) -> int:
    """Grow a street match over the address lines after it (``Apt. 864\nArtilleros\n, CO\n Uruguay 64677``),
    but not past a full stop followed by a space (the next sentence)."""
    for _ in range(limit):
        m = _ADDRESS_TAIL.match(text, end)
        if m is None or (text[end - 1] == "." and not m.group(1).strip(" \t")):
            break
        end = m.end()
    return end


_STREETS = {"street_address", "eu_street", "eu_street_prefix", "numbered_street", "po_box"}


class PatternGroupRecognizer(EntityRecognizer):
    """Regexes with an optional capture group for the span, one entity type per instance."""

    def __init__(self, entity: str, patterns: list[tuple[str, re.Pattern[str], float]]) -> None:
        self._patterns = patterns
        super().__init__(supported_entities=[entity], name=f"Interlock{entity.title().replace('_', '')}Recognizer")

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        entity = self.supported_entities[0]
        out: list[RecognizerResult] = []
        for _name, pattern, score in self._patterns:
            for m in pattern.finditer(text):
                group = 1 if pattern.groups else 0
                start, end = m.span(group)
                if _name in _STREETS:
                    end = extend_address(text, end)
                if entity == "PERSON" and text[start:end].split()[0] in _NOT_NAMES:
                    continue
                out.append(RecognizerResult(entity, start, end, score))
        return out


_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d{1,4}(?:[ .-]?\(?\d{1,4}\)?)(?:[ .-]?\d{2,4}){1,4}(?![\w-])")
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
_NOT_PHONE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}|^\d{3,4}-\d{2}-\d{4}$")
_PHONE_CONTEXT = re.compile(
    r"(?i)(call|phone|tel|mobile|cell|whatsapp|fax|reach|text|number|contact|dial)\W{0,3}\S*\W*$"
)


class PhoneNumberRecognizer(EntityRecognizer):
    """Phone numbers in any country's layout: 7 to 15 digits with the usual separators. Presidio's
    ``phonenumbers``-based recognizer is precise per region but takes most of the analysis time and misses
    numbers without a country prefix outside the US."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PHONE_NUMBER"], name="InterlockPhoneRecognizer")

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        out = []
        for m in _PHONE.finditer(text):
            value = m.group(0)
            digits = sum(c.isdigit() for c in value)
            if not 7 <= digits <= 15 or _DATE_LIKE.match(value) or (value.isdigit() and digits > 11):
                continue
            if _NOT_PHONE.match(value):  # a timestamp, or an SSN / licence layout: other recognizers' business
                continue
            context = _PHONE_CONTEXT.search(text[max(0, m.start() - 30) : m.start()])
            if not context and len(value.split()) == 2 and not any(c in value for c in "+-.()"):
                continue  # "370 3911": two bare groups are a house number and a postcode as often as a phone
            score = 0.7 if context else 0.5
            out.append(RecognizerResult("PHONE_NUMBER", m.start(), m.end(), score))
        return out


def interlock_recognizers() -> list[EntityRecognizer]:
    return [PhoneNumberRecognizer(), *(PatternGroupRecognizer(e, patterns) for e, patterns in PATTERNS.items())]
