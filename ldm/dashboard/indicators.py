"""The indicators a board reads, with the metadata Fingertips shows beside each one.

One entry per indicator says where its published figures are (mart, filter, value columns) and what
they mean, so the pages, the charts and the CSV downloads all describe the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldm.sql import literal

SOURCES_GP = "GP registrations and GP coded events (SNOMED CT)"
SOURCES_APC = "GP registrations and admitted patient care spells (SUS-style)"
SOURCES_AE = "GP registrations and A&E attendances (ECDS-style)"
SOURCES_DEATHS = (
    "Civil-registration deaths (age, sex and usual residence at death) and GP registrations (the population)"
)

LINKAGE = (
    "Activity is counted only where the record was linked to a registered person (deterministic steps, "
    "then a Fellegi-Sunter model; governance/linkage_rules.md); unlinked records are kept in the store "
    "but not counted, so rates can be slightly low. People who opted out of data sharing are not counted."
)
DISCLOSURE = (
    "Published under disclosure control (governance/disclosure_control.md): counts from 0 to 7 are "
    "suppressed and every other count is rounded to the nearest 5; rates and intervals are recomputed "
    "from the rounded counts; a cell that would reveal a suppressed one is suppressed too."
)
LE_DISCLOSURE = (
    "Life expectancy is published to one decimal only where the published person-years exceed 5,000 and "
    "the published deaths are at least 10 (the ONS and Fingertips rule; governance/disclosure_control.md); "
    "elsewhere it is suppressed. Where it could not be computed for one area of a level that meets the rule "
    "(no deaths aged 90 and over, or too wide an interval), it is suppressed for every area of that level, "
    "so that a gap does not say why."
)


@dataclass(frozen=True)
class Indicator:
    """Where an indicator's published figures are and what they mean.

    `where` selects its rows of `mart` (SQL over the published table); `value`, `lower` and `upper`
    name the published columns drawn; `counts` the published counts shown beside them. `kind` says
    how the value is read (proportion, rate per 1,000, years) and which test compares two periods.
    """

    key: str
    title: str
    short: str
    mart: str
    where: str
    kind: str  # proportion | rate | years
    value: str
    lower: str
    upper: str
    counts: tuple[str, ...]
    definition: str
    numerator: str
    denominator: str
    sources: str
    method: str
    caveats: str
    inequality_where: str | None = None  # its rows of mart_inequalities, where it has them
    places: bool = True

    def text(self, field: str, min_age: int | None) -> str:
        """A metadata field with the register's minimum age (a published dimension) filled in."""
        return getattr(self, field).replace("{ages}", ages(min_age))

    @property
    def unit(self) -> str:
        return {"proportion": "%", "rate": "per 1,000 persons", "years": "years"}[self.kind]


def ages(min_age: int | None) -> str:
    return f"aged {min_age} or over" if min_age else "of any age"


def _counted(domain: str, column: str, key: str, kind: str, value: str) -> dict:
    """What an indicator of published counts shares: its rows of mart_<domain> (where `column` is
    `key`), its value with the 95% interval beside it, and its rows of mart_inequalities."""
    return {
        "mart": f"mart_{domain}",
        "where": f"{column} = {literal(key)}",
        "kind": kind,
        "value": value,
        "lower": f"{value}_lower",
        "upper": f"{value}_upper",
        "counts": ("numerator", "denominator"),
        "inequality_where": f"indicator_domain = {literal(domain)} and indicator = {literal(key)}",
    }


def _prevalence(condition: str, title: str, register: str) -> Indicator:
    ages = "{ages}"  # filled from the published min_age when the page is written (see ages())
    return Indicator(
        key=f"prevalence_{condition}",
        title=f"{title} prevalence",
        short=title,
        definition=(
            f"The share of registered patients {ages} who are on the {register} register at the end of "
            "the period (QOF-style recorded prevalence, crude)."
        ),
        numerator=f"Registered patients {ages} with a {register} code (not resolved) at the period end.",
        denominator=f"Registered patients {ages} at the period end (an open GP registration, not dead).",
        sources=SOURCES_GP,
        method=(
            "Crude proportion with a Wilson score 95% interval (PHEindicatormethods' phe_proportion), "
            "computed from the published, rounded counts."
        ),
        caveats=(
            "Recorded prevalence depends on how practices code; it is not the true prevalence. "
            f"{LINKAGE} {DISCLOSURE}"
        ),
        **_counted("prevalence", "condition", condition, "proportion", "crude_rate"),
    )


def _utilisation(measure: str, title: str, short: str, counted: str, sources: str) -> Indicator:
    return Indicator(
        key=measure,
        title=title,
        short=short,
        definition=f"{counted} in the 12 months, per 1,000 registered persons at the period end (crude).",
        numerator=f"{counted} in the 12 months by people registered at the period end.",
        denominator="Registered persons at the period end, by where they lived then.",
        sources=sources,
        method=(
            "Crude rate per 1,000 with Byar's 95% interval on the count (PHEindicatormethods), computed "
            "from the published, rounded counts."
        ),
        caveats=f"{LINKAGE} {DISCLOSURE}",
        **_counted("utilisation", "measure", measure, "rate", "rate"),
    )


# What the life-expectancy indicators share: the mart, how the value reads, where the deaths come from.
LIFE_TABLES: dict = {
    "mart": "mart_life_expectancy",
    "kind": "years",
    "sources": SOURCES_DEATHS,
}


def _life_expectancy(sex: str, word: str) -> Indicator:
    return Indicator(
        key=f"life_expectancy_{word.lower()}",
        title=f"Life expectancy at birth, {word.lower()}",
        short=f"Life expectancy ({word.lower()})",
        where=f"sex = {literal(sex)} and start_age = 0",
        value="life_expectancy",
        lower="life_expectancy_lower",
        upper="life_expectancy_upper",
        counts=("deaths", "person_years"),
        definition=(
            f"The average number of years a {word.lower()} baby would live if they experienced the period's "
            "age-specific death rates throughout life (period life expectancy)."
        ),
        numerator=(
            "Deaths of Leeds residents in the period, from the civil-registration deaths feed, in 20 age bands "
            "(0, 1-4, ..., 85-89, 90+)."
        ),
        denominator="Person-years: the mean of the registered lists at the start and the end of the period.",
        method=(
            "Chiang II abridged life table with Silcocks' 95% interval (PHEindicatormethods' "
            "phe_life_expectancy), computed in the store and published to one decimal."
        ),
        caveats=(
            "A death counts whether or not it was linked to a registered person; the population is the "
            "registered list (people who opted out are not in it), not the resident population ONS uses. "
            f"{LE_DISCLOSURE} {DISCLOSURE}"
        ),
        **LIFE_TABLES,
    )


def _le_gap(sex: str, word: str) -> Indicator:
    return Indicator(
        key=f"life_expectancy_gap_{word.lower()}",
        title=f"Gap in life expectancy at birth, {word.lower()}: least vs most deprived fifth",
        short=f"Life expectancy gap ({word.lower()})",
        where=f"sex = {literal(sex)} and start_age = 0",  # of the IMD quintile rows, which carry the gap
        value="deprivation_gap",
        lower="gap_lower",
        upper="gap_upper",
        counts=(),
        definition=(
            f"Life expectancy at birth ({word.lower()}) in the least deprived IMD quintile of Leeds less that "
            "in the most deprived quintile."
        ),
        numerator="A difference, not a ratio: life expectancy in IMD quintile 5 (least deprived) ...",
        denominator="... less life expectancy in IMD quintile 1 (most deprived).",
        method=(
            "Difference of two life expectancies (published to one decimal); its 95% interval assumes "
            "the two are independent, with standard errors taken from their published intervals."
        ),
        caveats=(
            f"Shown only where both quintiles' life expectancy is published. {LE_DISCLOSURE} Deaths count "
            "whether or not they were linked to a registered person."
        ),
        places=False,
        **LIFE_TABLES,
    )


INDICATORS: tuple[Indicator, ...] = (
    _prevalence("diabetes", "Diabetes", "diabetes"),
    _prevalence("hypertension", "Hypertension", "hypertension"),
    _prevalence("asthma", "Asthma", "asthma"),
    _prevalence("copd", "COPD", "COPD"),
    _prevalence("chd", "Coronary heart disease", "CHD"),
    _prevalence("atrial_fibrillation", "Atrial fibrillation", "atrial fibrillation"),
    _prevalence("heart_failure", "Heart failure", "heart failure"),
    _prevalence("ckd", "Chronic kidney disease", "CKD (stages 3-5)"),
    _prevalence("dementia", "Dementia", "dementia"),
    _prevalence("depression", "Depression", "depression"),
    _utilisation(
        "emergency_admissions",
        "Emergency admissions per 1,000 persons",
        "Emergency admissions",
        "Emergency admissions (admission method 21-28)",
        SOURCES_APC,
    ),
    _utilisation(
        "ae_attendances",
        "A&E attendances per 1,000 persons",
        "A&E attendances",
        "A&E attendances",
        SOURCES_AE,
    ),
    _life_expectancy("F", "Female"),
    _life_expectancy("M", "Male"),
    _le_gap("F", "Female"),
    _le_gap("M", "Male"),
)
