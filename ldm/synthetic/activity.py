"""Health care activity for a slice of the synthetic people, as canonical columns.

Use rises with age, number of conditions and deprivation. Each function returns a dict of numpy
arrays with at least `person` (index into People) and `date`; the writers turn them into each
provider's own format.
"""

from __future__ import annotations

import numpy as np

from ldm.synthetic import reference, vocabulary
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.population import DAY, People, pick_weighted

Records = dict[str, np.ndarray]
NAT = np.datetime64("NaT", "D")


class Period:
    """Each person's window of observation: the activity period, cut by registration and death."""

    def __init__(self, people: People, index: np.ndarray, config: SampleConfig, gp: bool):
        window_start = np.datetime64(config.window_start, "D")
        as_of = np.datetime64(config.as_of, "D")
        born = people.date_of_birth[index]
        start = np.where(born > window_start, born, window_start)
        end = np.full(len(index), as_of + DAY)
        if gp:
            registered = people.registered_on[index]
            start = np.where(registered > start, registered, start)
            left = people.deregistered_on[index]
        else:
            left = people.died_on[index]
        end = np.where(~np.isnat(left) & (left < end), left, end)
        self.index = index
        self.start = start
        self.years = np.maximum((end - start) / DAY, 0) / 365.25


def _deprivation(people: People, index: np.ndarray, strength: float) -> np.ndarray:
    decile = people.imd_decile[index]
    return np.where(decile == 0, 1.0, 1 + strength * (5.5 - decile) / 4.5)


def _occurrences(rng: np.random.Generator, period: Period, yearly_rate: np.ndarray) -> Records:
    counts = rng.poisson(yearly_rate * period.years)
    local = np.repeat(np.arange(len(period.index)), counts)
    span_days = period.years[local] * 365.25
    date = period.start[local] + (rng.random(len(local)) * span_days).astype(np.int64) * DAY
    return {"person": period.index[local], "date": date}


def _choice(rng: np.random.Generator, values, size: int, p=None) -> np.ndarray:
    values = np.asarray(values)
    if p is None:
        return values[rng.integers(0, len(values), size)]
    return values[pick_weighted(rng, np.asarray(p, dtype=float), size)]


def _has_condition(people: People, person: np.ndarray, as_of_date: np.ndarray) -> np.ndarray:
    """Boolean (records, conditions) matrix: condition diagnosed by the record's date."""
    columns = [
        ~np.isnat(onset[person]) & (onset[person] <= as_of_date) for onset in people.conditions.values()
    ]
    return np.column_stack(columns) if columns else np.zeros((len(person), 0), bool)


def _icd10_for(rng: np.random.Generator, condition_index: np.ndarray) -> np.ndarray:
    codes = np.full(len(condition_index), "", dtype=object)
    for i, condition in enumerate(reference.CONDITIONS):
        hit = condition_index == i
        codes[hit] = _choice(rng, reference.icd10_codes(condition), int(hit.sum()))
    return codes


def gp_events(rng, people: People, index: np.ndarray, config: SampleConfig) -> Records:
    index = index[~people.out_of_area[index]]
    period = Period(people, index, config, gp=True)
    conditions = people.condition_count[index]
    age = people.age[index]
    rate = (4.0 + 0.13 * age) * (1 + 0.5 * conditions) * np.sqrt(people.frailty[index])
    routine = _occurrences(rng, period, rate)
    n = len(routine["person"])
    measured = rng.random(n) < 0.75
    which = rng.integers(0, len(vocabulary.GP_MEASUREMENTS), n)
    table = np.array(vocabulary.GP_MEASUREMENTS, dtype=object)
    code = np.where(measured, table[which, 0], _choice(rng, vocabulary.GP_UNVALUED, n))
    value = np.where(
        measured,
        np.round(
            table[which, 2].astype(float) + rng.standard_normal(n) * table[which, 3].astype(float),
            1,
        ),
        np.nan,
    )
    unit = np.where(measured, table[which, 1], "")
    parts = [
        {
            "person": routine["person"],
            "date": routine["date"],
            "code": code,
            "value": value,
            "unit": unit,
        }
    ]

    for condition, onset in people.conditions.items():
        has = ~np.isnat(onset[index])
        who = index[has]
        codes = reference.snomed_codes(condition)
        parts.append(
            {
                "person": who,
                "date": onset[who],
                "code": _choice(rng, codes, len(who)),
                "value": np.full(len(who), np.nan),
                "unit": np.full(len(who), ""),
            }
        )
        review = Period(people, who, config, gp=True)
        reviews = _occurrences(rng, review, np.full(len(who), 2.0))
        reviews["date"] = np.maximum(reviews["date"], onset[reviews["person"]])
        k = len(reviews["person"])
        if condition == "DM":
            code_, unit_, mean, sd = vocabulary.HBA1C
            reviews.update(
                code=np.full(k, code_),
                unit=np.full(k, unit_),
                value=np.round(mean + sd * rng.standard_normal(k)),
            )
        else:
            reviews.update(code=_choice(rng, codes, k), unit=np.full(k, ""), value=np.full(k, np.nan))
        parts.append(reviews)
        if condition in people.resolved:
            resolved_on = people.resolved[condition][index]
            gone = index[~np.isnat(resolved_on)]
            parts.append(
                {
                    "person": gone,
                    "date": people.resolved[condition][gone],
                    "code": np.full(len(gone), vocabulary.RESOLVED[condition]),
                    "value": np.full(len(gone), np.nan),
                    "unit": np.full(len(gone), ""),
                }
            )
    records = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    person, date = records["person"], records["date"]
    before_change = ~np.isnat(people.practice_changed_on[person]) & (
        date < people.practice_changed_on[person]
    )
    records["practice"] = np.where(before_change, people.previous_practice[person], people.practice[person])
    order = np.lexsort((date, person))
    return {key: values[order] for key, values in records.items()}


def _hospital_rate(
    people: People, index: np.ndarray, base: np.ndarray, strength: float, per_condition: float
):
    away = np.where(people.out_of_area[index], 0.3, 1.0)
    return (
        base
        * (1 + per_condition * people.condition_count[index])
        * _deprivation(people, index, strength)
        * np.sqrt(people.frailty[index])
        * away
    )


def _provider(rng, size: int) -> np.ndarray:
    return _choice(rng, vocabulary.PROVIDERS, size, vocabulary.PROVIDER_SHARE)


# Why people are admitted as an emergency. Each share is aimed at a published England rate, checked on
# generated data by tests/test_hospital_indicator_codelists.py.
OWN_CONDITION_SHARE = {"emergency": 0.15, "elective": 0.3}  # spells of people with a planted
# long-term condition whose primary diagnosis is that condition: the source of chronic ambulatory care
# sensitive admissions (NHS Outcomes Framework 2.3.i, England roughly 800 per 100,000 a year, about 8%
# of emergency admissions), which therefore come from people who have the condition.
# Acute ambulatory care sensitive conditions (NHS Outcomes Framework 3a, England roughly 1,300-1,500
# admissions per 100,000 a year, so about 1.5% of people): a share of the other emergency spells, by
# the age bands of vocabulary.ACUTE_ACS_AGE_BANDS. Children's emergency admissions are far more often
# for these infections than adults'; the rate per 1,000 still rises with age because emergency
# admissions do. The shares are set so the crude rate lands near the England figure (an assumption
# of this generator, not a published age profile).
ACUTE_ACS_SHARE = (0.30, 0.10, 0.11)
# Falls in people aged 65 and over (PHOF C29: England about 2,000 emergency admissions per 100,000
# aged 65+ a year, rising steeply with age, a little higher for women): the share of an emergency
# spell at age a that is a fall injury is FALL_SHARE_AT_65 * exp(FALL_SHARE_GROWTH * (a - 65)), times
# FALL_SHARE_FEMALE for women, capped.
FALL_SHARE_AT_65, FALL_SHARE_GROWTH, FALL_SHARE_FEMALE, FALL_SHARE_CAP = 0.025, 0.055, 1.25, 0.25
# Emergency readmissions within 30 days of discharge (England about 14% of emergency admissions): a
# planted readmission follows an emergency discharge with probability READMISSION_BASE, scaled by the
# square root of the person's frailty (so the frail are readmitted again and again) and by
# READMISSION_PER_CONDITION for each long-term condition, capped; readmissions can themselves be
# followed by one (READMISSION_ROUNDS). The gap from discharge is geometric with the given mean days.
READMISSION_BASE, READMISSION_PER_CONDITION, READMISSION_CAP = 0.095, 0.1, 0.5
READMISSION_ROUNDS, READMISSION_MEAN_GAP_DAYS, READMISSION_WINDOW_DAYS = 2, 9.0, 30


def _age_on(people: People, person: np.ndarray, date: np.ndarray) -> np.ndarray:
    """Whole years of age on the given dates (indicators use age at admission, not at extract)."""
    return ((date - people.date_of_birth[person]) / DAY / 365.25).astype(np.int64)


def _fall_share(age: np.ndarray, sex: np.ndarray) -> np.ndarray:
    share = (
        FALL_SHARE_AT_65
        * np.exp(FALL_SHARE_GROWTH * (age - 65))
        * np.where(sex == "F", FALL_SHARE_FEMALE, 1.0)
    )
    return np.where(age >= 65, np.minimum(share, FALL_SHARE_CAP), 0.0)


def _acute_acs_diagnoses(rng: np.random.Generator, age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each spell's acute-ACS code and the share of spells at that age given one."""
    table = vocabulary.ACUTE_ACS_DIAGNOSES
    codes = np.array([row[0] for row in table], dtype=object)
    band = np.searchsorted(vocabulary.ACUTE_ACS_AGE_BANDS, age, side="right")
    chosen = np.full(len(age), "", dtype=object)
    for b in range(len(ACUTE_ACS_SHARE)):
        hit = band == b
        chosen[hit] = _choice(rng, codes, int(hit.sum()), [row[1 + b] for row in table])
    return chosen, np.asarray(ACUTE_ACS_SHARE)[band]


def _weighted(rng: np.random.Generator, table, size: int) -> np.ndarray:
    return _choice(rng, [code for code, _ in table], size, [weight for _, weight in table])


def _spell_details(rng, people: People, records: Records, emergency: np.ndarray, config) -> Records:
    """Method, dates, diagnoses and procedures of spells whose person, date and urgency are known."""
    person, n = records["person"], len(records["person"])
    age_r = people.age[person]
    method = np.where(
        emergency,
        _choice(rng, vocabulary.EMERGENCY_METHODS, n),
        _choice(rng, vocabulary.ELECTIVE_METHODS, n),
    )
    stay = np.where(
        emergency,
        rng.geometric(1 / (2 + 0.06 * age_r)) - 1,
        np.where(rng.random(n) < 0.6, 0, rng.geometric(0.3)),
    )
    discharge = records["date"] + stay * DAY
    discharge = np.where(discharge > np.datetime64(config.as_of, "D"), NAT, discharge)

    has = _has_condition(people, person, records["date"])
    priority = np.where(has, rng.random(has.shape), -1.0)
    own = priority.argmax(axis=1) if has.shape[1] else np.zeros(n, int)
    age_then = _age_on(people, person, records["date"])
    fall = emergency & (rng.random(n) < _fall_share(age_then, people.sex[person]))
    own_share = np.where(emergency, OWN_CONDITION_SHARE["emergency"], OWN_CONDITION_SHARE["elective"])
    use_own = has.any(axis=1) & (rng.random(n) < own_share) & ~fall
    acute_code, acute_share = _acute_acs_diagnoses(rng, age_then)
    acute = emergency & ~fall & ~use_own & (rng.random(n) < acute_share)
    primary = np.where(use_own, _icd10_for(rng, own), _choice(rng, vocabulary.ADMISSION_DIAGNOSES, n))
    primary = np.where(acute, acute_code, primary)
    primary = np.where(fall, _weighted(rng, vocabulary.FALL_INJURIES, n), primary)
    secondary = np.full((n, 4), "", dtype=object)
    coded = np.where(has & ~(use_own[:, None] & (np.arange(has.shape[1]) == own[:, None])), 1, 0)
    rank = np.argsort(-coded * rng.random(has.shape) - coded, axis=1)[:, :4]
    for slot in range(4):
        slot_condition = rank[:, slot]
        present = coded[np.arange(n), slot_condition] == 1
        secondary[present, slot] = _icd10_for(rng, slot_condition[present])
    # A fall injury carries its external cause first, as HES codes it; the conditions move up one.
    secondary[fall, 1:] = secondary[fall, :3]
    secondary[fall, 0] = _weighted(rng, vocabulary.FALL_CAUSES, int(fall.sum()))
    has_procedure = np.where(emergency, rng.random(n) < 0.25, rng.random(n) < 0.85)
    procedure = np.where(has_procedure, _choice(rng, vocabulary.ELECTIVE_PROCEDURES, n), "")
    second_procedure = np.where(
        has_procedure & (rng.random(n) < 0.2), _choice(rng, vocabulary.ELECTIVE_PROCEDURES, n), ""
    )
    return {
        **records,
        "discharge_date": discharge,
        "admission_method": method,
        "primary_diagnosis": primary,
        **{f"secondary_diagnosis_{i + 1}": secondary[:, i] for i in range(4)},
        "primary_procedure": procedure,
        "secondary_procedure_1": second_procedure,
        "provider": _provider(rng, n),
    }


def _readmissions(rng, people: People, spells: Records, config) -> Records:
    """Emergency readmissions within the window after emergency discharges, before death or extract."""
    person = spells["person"]
    emergency = np.char.startswith(spells["admission_method"].astype(str), "2")
    discharged = spells["discharge_date"]
    chance = np.minimum(
        READMISSION_BASE
        * np.sqrt(people.frailty[person])
        * (1 + READMISSION_PER_CONDITION * people.condition_count[person]),
        READMISSION_CAP,
    )
    hit = emergency & ~np.isnat(discharged) & (rng.random(len(person)) < chance)
    gap = np.minimum(
        rng.geometric(1 / READMISSION_MEAN_GAP_DAYS, int(hit.sum())) - 1, READMISSION_WINDOW_DAYS - 1
    )
    who, date = person[hit], discharged[hit] + gap * DAY
    died = people.died_on[who]
    keep = (date <= np.datetime64(config.as_of, "D")) & (np.isnat(died) | (date < died))
    return {"person": who[keep], "date": date[keep]}


def apc_spells(rng, people: People, index: np.ndarray, config: SampleConfig) -> Records:
    period = Period(people, index, config, gp=False)
    age = people.age[index]
    records = _occurrences(rng, period, _hospital_rate(people, index, 0.04 + 0.004 * age, 0.3, 0.4))
    person, n = records["person"], len(records["person"])
    age_r, decile = people.age[person], people.imd_decile[person]
    emergency_share = np.clip(0.3 + 0.004 * age_r + 0.03 * (5.5 - np.where(decile == 0, 5.5, decile)), 0, 0.9)
    parts = [_spell_details(rng, people, records, rng.random(n) < emergency_share, config)]
    for _ in range(READMISSION_ROUNDS):
        again = _readmissions(rng, people, parts[-1], config)
        parts.append(_spell_details(rng, people, again, np.ones(len(again["person"]), bool), config))
    spells = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    order = np.lexsort((spells["date"], spells["person"]))
    return {key: values[order] for key, values in spells.items()}


def op_appointments(rng, people: People, index: np.ndarray, config: SampleConfig) -> Records:
    period = Period(people, index, config, gp=False)
    age = people.age[index]
    records = _occurrences(rng, period, _hospital_rate(people, index, 0.5 + 0.02 * age, 0.15, 0.4))
    person, n = records["person"], len(records["person"])
    decile = people.imd_decile[person]
    dna_share = 0.04 + 0.01 * (10 - np.where(decile == 0, 7, decile))
    draw = rng.random(n)
    attendance = np.where(
        draw < dna_share,
        vocabulary.DID_NOT_ATTEND,
        np.where(
            draw < dna_share + 0.06,
            _choice(rng, vocabulary.CANCELLED, n),
            _choice(rng, vocabulary.ATTENDED, n, (0.85, 0.15)),
        ),
    )
    child = people.age[person] < 16
    function = np.where(
        child & (rng.random(n) < 0.7),
        vocabulary.PAEDIATRICS,
        _choice(rng, vocabulary.TREATMENT_FUNCTIONS, n),
    )
    return {
        **records,
        "treatment_function": function,
        "first_attendance": np.where(rng.random(n) < 0.35, "1", "2"),
        "attendance_status": attendance,
        "provider": _provider(rng, n),
    }


def ae_attendances(rng, people: People, index: np.ndarray, config: SampleConfig) -> Records:
    period = Period(people, index, config, gp=False)
    age = people.age[index]
    age_rate = np.where(age < 5, 0.45, np.where(age < 65, 0.25, 0.25 + 0.012 * (age - 65)))
    records = _occurrences(rng, period, _hospital_rate(people, index, age_rate, 0.45, 0.3))
    person, n = records["person"], len(records["person"])
    minute_of_day = (np.clip(rng.normal(14.5, 4.5, n), 0, 23.99) * 60).astype(np.int64)
    arrival = records["date"].astype("datetime64[m]") + minute_of_day * np.timedelta64(1, "m")
    length_of_stay = np.clip(rng.lognormal(np.log(190), 0.6, n), 5, 24 * 60).astype(np.int64)
    admitted_share = np.clip(0.1 + 0.005 * people.age[person], 0, 0.6)
    destination = np.where(
        rng.random(n) < admitted_share,
        vocabulary.AE_DESTINATIONS[1],
        _choice(rng, (vocabulary.AE_DESTINATIONS[0], vocabulary.AE_DESTINATIONS[2]), n, (0.96, 0.04)),
    )
    return {
        **records,
        "arrival": arrival,
        "departure": arrival + length_of_stay * np.timedelta64(1, "m"),
        "chief_complaint": _choice(rng, vocabulary.AE_CHIEF_COMPLAINTS, n),
        "acuity": _choice(rng, vocabulary.AE_ACUITY, n, vocabulary.AE_ACUITY_SHARE),
        "discharge_destination": destination,
        "provider": np.full(n, "RR8"),
    }


def community_contacts(rng, people: People, index: np.ndarray, config: SampleConfig) -> Records:
    index = index[~people.out_of_area[index]]
    period = Period(people, index, config, gp=False)
    age = people.age[index].astype(float)
    conditions = people.condition_count[index]
    rate = (
        np.select(
            [age < 5, age < 16, age < 65],
            [2.0, 0.3, 0.3 + 0.3 * conditions],
            0.5 + 0.08 * (age - 65) + 0.8 * conditions,
        )
        * _deprivation(people, index, 0.3)
        * np.sqrt(people.frailty[index])
    )
    records = _occurrences(rng, period, rate)
    person, n = records["person"], len(records["person"])
    age_r = people.age[person]
    service = np.select(
        [age_r < 5, age_r < 16, age_r < 65],
        [
            np.full(n, "HV"),
            _choice(rng, ("SN", "SLT"), n, (0.6, 0.4)),
            _choice(rng, ("PT", "POD", "CMH"), n, (0.4, 0.25, 0.35)),
        ],
        _choice(rng, ("DN", "POD", "PT"), n, (0.6, 0.25, 0.15)),
    )
    names = {code: name for code, name, _ in vocabulary.COMMUNITY_SERVICES}
    return {
        **records,
        "referral_date": records["date"] - rng.exponential(30, n).astype(np.int64) * DAY,
        "service": service,
        "team_type": np.vectorize(names.get, otypes=[object])(service) if n else np.array([], object),
        "contact_mode": _choice(rng, vocabulary.CONTACT_MODES, n, vocabulary.CONTACT_MODE_SHARE),
        "attended": _choice(rng, ("Y", "N", "C"), n, (0.9, 0.07, 0.03)),
    }


ACTIVITY = {
    "gp_events": gp_events,
    "apc_spells": apc_spells,
    "op_appointments": op_appointments,
    "ae_attendances": ae_attendances,
    "community_contacts": community_contacts,
}
