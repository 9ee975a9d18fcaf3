"""Closed word classes of English that ``verify.py`` reads (general lexicon, not tuned to any data set): negations
and implicit negations, numbers, dates, comparison directions, quantifiers, evaluative polarity, antonyms, and the
affixes that make a word's opposite."""

from __future__ import annotations


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _classes(table: dict[str, str]) -> dict[str, str]:
    return {w: cls for cls, words in table.items() for w in words.split()}


# Explicit negations, and the verbs and adverbs that negate what follows ("failed to show", "unable to",
# "unless" = "if not", "hardly"): each flips the parity of the sentence's negations.
NEGATIONS = _set(
    "not no never none nobody nothing neither nor without cannot cant dont doesnt didnt isnt arent wasnt werent "
    "wont wouldnt shouldnt couldnt hasnt havent hadnt mustnt nowhere "
    "unless fail fails failed failing unable lack lacks lacked lacking absent refuse refuses refused refusing deny "
    "denies denied reject rejects rejected hardly barely scarcely"
)
NUMBER_WORDS = _set(
    "zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion trillion first second third fourth fifth sixth seventh eighth ninth tenth half quarter double "
    "triple twice dozen"
)
# Number words with a digit form: "two" and "2" are one number (a paraphrase spells it either way).
_SPELLED = "zero two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty sixty seventy "
DIGITS = dict(zip(f"{_SPELLED}eighty ninety".split(), map(str, (0, *range(2, 13), *range(20, 100, 10))), strict=True))
DATES = _set(
    "january february april june july august september october november december jan feb apr jun jul aug sep "
    "sept oct nov dec monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday tonight "
    "weekend summer winter autumn"
)
# Comparison words by direction: synonyms ("bigger", "larger") agree, opposite directions veto.
COMPARISONS = _classes({
    "+": "more greater bigger larger higher better faster longer older stronger heavier richer",
    "-": "less fewer smaller lower worse slower shorter younger cheaper weaker lighter poorer",
    "++": "most biggest largest highest greatest best fastest longest oldest maximum max",
    "--": "least smallest lowest worst slowest shortest youngest cheapest minimum min fewest",
    "<": "before earlier prior",
    ">": "after later",
})  # fmt: skip
# Quantifiers and frequency adverbs by force: "always" / "sometimes", "all" / "few" say different things.
QUANTIFIERS = _classes({
    "all": "all every always everyone everybody everything everywhere entirely completely totally fully constantly "
           "invariably",
    "most": "mostly usually generally typically often frequently commonly mainly largely normally",
    "some": "some sometimes occasionally several partly partially somewhat",
    "few": "few rarely seldom infrequently",
    "only": "only solely exclusively merely",
})  # fmt: skip
# Evaluative words by polarity: a question that adds a positive word where the other adds a negative one asks the
# opposite ("is the update stable" / "is the update broken").
POSITIVE = _set(
    "good great excellent nice amazing awesome wonderful fantastic perfect love loved loves like liked likes enjoy "
    "enjoyed happy pleased recommend recommended positive beautiful delicious tasty fresh friendly helpful easy "
    "comfortable reliable stable secure safe correct right success successful succeed succeeded win won benefit "
    "beneficial effective efficient improve improved improves support supports supported supportive agree agreed "
    "approve approved accept accepted allow allows allowed permit permits permitted true valid legal clean strong "
    "healthy cure cures cured pleasant impressive useful superb brilliant favorite favourite satisfied glad"
)
NEGATIVE = _set(
    "bad poor terrible awful horrible hate hated hates dislike disliked disappointed disappointing unhappy negative "
    "ugly disgusting bland stale rude unhelpful difficult hard uncomfortable unreliable unstable insecure unsafe "
    "dangerous wrong incorrect failure lose lost loss harm harmful ineffective inefficient worsen worsened oppose "
    "opposed opposes critical disagree disagreed forbid forbids forbidden prohibit prohibits prohibited ban banned "
    "false invalid illegal dirty weak sick unpleasant mediocre useless boring annoying broken waste wasted"
)
# Prefixes that negate a word ("ineffective", "unlikely", "disagree"): the stem in the other question vetoes.
NEGATING_PREFIXES = ("un", "in", "im", "ir", "il", "dis", "non")
# Affix pairs that make a word's opposite from one stem: upgrade / downgrade, encode / decode, import / export,
# overestimate / underestimate, preprocessing / postprocessing, careful / careless.
OPPOSITE_PREFIXES = (
    ("up", "down"), ("en", "de"), ("im", "ex"), ("in", "ex"), ("in", "out"), ("over", "under"), ("pre", "post"),
    ("inc", "dec"), ("max", "min"), ("de", ""),
)  # fmt: skip
OPPOSITE_SUFFIXES = (("ful", "less"),)
# Common antonyms: one side of a pair in each question is a different question (buy vs sell). Pairs of very
# common words with other senses (in/out, right/left, new/old) are left out: they vetoed true paraphrases.
ANTONYM_PAIRS = (
    "buy sell,open close,start stop,begin end,add remove,enable disable,allow deny,accept reject,win lose,"
    "hot cold,warm cool,true false,good bad,happy sad,rich poor,push pull,import export,input output,"
    "increase decrease,positive negative,love hate,friend enemy,safe dangerous,early late,fast slow,"
    "strong weak,hard easy,long short,big small,large small,high low,young old,inside outside,"
    "internal external,include exclude,encrypt decrypt,upload download,login logout,lock unlock,send receive,"
    "borrow lend,arrive leave,north south,east west,male female,men women,boy girl,guilty innocent,alive dead,"
    "agree disagree,like dislike,always never,everyone nobody,everything nothing,success failure,pass fail,"
    "profit loss,credit debit,deposit withdraw,above below,cheap expensive,clean dirty,full empty,wet dry,"
    "plus minus,ascending descending,forward backward,horizontal vertical,brief long,thin fat,thin thick,"
    "win loss,victory defeat,rise fall,gain loss,accept decline,present absent,ancient modern,maximum minimum,"
    "first last,upper lower,top bottom,front back,inner outer,include omit,"
    "support oppose,accept refuse,appear disappear,connect disconnect,attach detach,install uninstall,"
    "mount unmount,expand collapse,compress decompress,serialize deserialize,ascend descend,minimize maximize"
)
ANTONYMS: dict[str, set[str]] = {}
for _pair in ANTONYM_PAIRS.split(","):
    _a, _b = _pair.split()
    ANTONYMS.setdefault(_a, set()).add(_b)
    ANTONYMS.setdefault(_b, set()).add(_a)
# Words that relate the content words on either side: their order is meaning ("USD to EUR" / "EUR to USD",
# "political rather than military"). ``from`` points the other way, so "to X from Y" equals "Y to X".
RELATIONS = {"to": ">", "into": ">", "towards": ">", "onto": ">", "from": "<", "than": "~", "rather": "~",
             "instead": "~", "versus": "~", "vs": "~", "over": "~"}  # fmt: skip
FUNCTION_WORDS = _set(
    "a an the of to in on at for by with from and or but if then than as is are was were be been being am do does "
    "did doing have has had having i you he she it we they me him her us them my your his its our their this that "
    "these those there here what which who whom whose when where why how can could would should will shall may "
    "might must not no so such into onto over under about also just very more most some any each all both either "
    "neither other another one own same too only up down out off again further once s t don"
)
