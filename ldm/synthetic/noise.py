"""Identifiers as a provider records them: taken from the person, then mangled at set rates.

Every fault planted here is also written to the ground truth, so tests can check that the pipeline
copes with it and that the planted rates match the configuration.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ldm.synthetic import nhs_numbers
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.population import DAY, People

HOSPITAL_FEEDS = ("apc_spells", "op_appointments", "ae_attendances")
NAMED_FEEDS = ("gp_registrations", "community_contacts", "deaths")
STALE_POSTCODE_FEEDS = (*HOSPITAL_FEEDS, "community_contacts")
LOCAL_ID_PREFIX = {"RR8": "L", "RXF": "M", "RCF": "A"}


def hospital_numbers(people: People, seed: int) -> dict[str, np.ndarray]:
    """Each provider's own patient number for every person (unique within the provider)."""
    numbers = {}
    for i, (provider, prefix) in enumerate(LOCAL_ID_PREFIX.items()):
        rng = np.random.default_rng([seed, 3, i])
        digits = rng.choice(9_000_000, size=len(people), replace=False) + 1_000_000
        numbers[provider] = np.char.add(prefix, digits.astype(str))
    return numbers


def _nhs_number_column(rng, feed: str, true_numbers: np.ndarray, config: SampleConfig):
    n = len(true_numbers)
    rates = config.noise
    missing_rate = rates.missing_nhs_number.get(feed, 0.0)
    keyed = feed not in rates.system_held_nhs_number
    wrong_rate = rates.wrong_check_digit if keyed else 0.0
    transposed_rate = rates.transposed_digits if keyed else 0.0
    draw = rng.random(n)
    missing = draw < missing_rate
    wrong_check = (draw >= missing_rate) & (draw < missing_rate + wrong_rate)
    upper = missing_rate + wrong_rate + transposed_rate
    transposed = (draw >= missing_rate + wrong_rate) & (draw < upper)
    numbers = true_numbers.copy()
    numbers[wrong_check] = nhs_numbers.with_wrong_check_digit(true_numbers[wrong_check], rng)
    numbers[transposed] = nhs_numbers.with_transposed_digits(true_numbers[transposed], rng)
    transposed &= numbers != true_numbers  # a swap of equal digits changes nothing
    text = numbers.astype(str).astype(object)
    text[missing] = None
    fault = np.select([missing, wrong_check, transposed], ["missing", "check_digit", "transposed"], "")
    return text, fault


def _dob_column(rng, true_dob: np.ndarray, rate: float):
    n = len(true_dob)
    typo = rng.random(n) < rate
    kind = rng.integers(0, 3, n)
    year = true_dob.astype("datetime64[Y]")
    month = true_dob.astype("datetime64[M]")
    day_in_month = (true_dob - month.astype("datetime64[D]")) / DAY + 1
    month_in_year = (month - year.astype("datetime64[M]")).astype(int) + 1
    # Day and month swapped, where the swap gives another real date.
    swappable = (day_in_month <= 12) & (day_in_month != month_in_year)
    swapped = (year.astype("datetime64[M]") + (day_in_month.astype(int) - 1)).astype("datetime64[D]") + (
        month_in_year - 1
    ) * DAY
    one_day_out = true_dob + np.where(rng.random(n) < 0.5, -1, 1) * DAY
    year_out = true_dob.astype("datetime64[D]") + np.where(rng.random(n) < 0.5, -365, 365) * DAY
    mangled = np.select([(kind == 0) & swappable, kind == 1], [swapped, one_day_out], year_out)
    dob = np.where(typo, mangled, true_dob)
    return dob, typo & (dob != true_dob)


def _name_variant(rng, names: np.ndarray) -> np.ndarray:
    """A plausible misspelling: a dropped letter, a doubled letter or two letters swapped."""
    out = names.astype(object).copy()
    for i, name in enumerate(names.tolist()):  # only the few names chosen for a variant
        if len(name) < 4:
            out[i] = name + name[-1]
            continue
        at = int(rng.integers(1, len(name) - 2))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            out[i] = name[:at] + name[at + 1 :]
        elif kind == 1:
            out[i] = name[:at] + name[at] + name[at:]
        else:
            swapped = name[:at] + name[at + 1] + name[at] + name[at + 2 :]
            out[i] = swapped if swapped != name else name[:at] + name[at + 1 :]
    return out


def _messy(rng, text: np.ndarray, chosen: np.ndarray, kind: str) -> np.ndarray:
    """Lower case, stray spaces, a missing or an extra space: what tired hands and old systems do."""
    values = pa.array(text[chosen], type=pa.string())
    if kind == "nhs_number":  # "999 123 4567" or " 9991234567 "
        spaced = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(values, 0, 3),
            pc.utf8_slice_codeunits(values, 3, 6),
            pc.utf8_slice_codeunits(values, 6, 10),
            " ",
        )
        padded = pc.binary_join_element_wise(" ", values, "  ", "")
        options = [spaced, padded]
    else:
        options = [
            pc.utf8_lower(values),
            pc.binary_join_element_wise(" ", values, "  ", ""),
            pc.replace_substring(values, " ", ""),
        ]
    pick = rng.integers(0, len(options), len(values))
    mangled = np.select(
        [pick == i for i in range(len(options))],
        [o.to_numpy(zero_copy_only=False) for o in options],
        None,
    )
    out = text.astype(object).copy()
    out[chosen] = mangled
    return out


def identifiers(rng, feed: str, records: dict, people: People, config: SampleConfig, local_ids):
    """Identifier columns for `records` as the provider sends them, and the faults planted."""
    person = records["person"]
    n = len(person)
    rates = config.noise
    columns, truth = {}, {}
    columns["nhs_number"], truth["nhs_fault"] = _nhs_number_column(
        rng, feed, people.nhs_number[person], config
    )
    columns["date_of_birth"], truth["dob_typo"] = _dob_column(
        rng, people.date_of_birth[person], rates.dob_typo
    )
    columns["sex"] = people.sex[person]

    moved_on = people.moved_on[person]
    moved = ~np.isnat(moved_on)
    before_move = moved & (records["date"] < moved_on)
    stale = np.zeros(n, bool)
    if feed in STALE_POSTCODE_FEEDS:
        stale = moved & ~before_move & (rng.random(n) < rates.stale_postcode)
    postcode = np.where(before_move | stale, people.previous_postcode[person], people.postcode[person])
    truth["stale_postcode"] = stale
    messy = rng.random(n) < rates.messy_text
    columns["postcode"] = _messy(rng, postcode, messy, "postcode")
    messy_number = messy & (rng.random(n) < 0.5) & (truth["nhs_fault"] != "missing")
    columns["nhs_number"] = _messy(rng, columns["nhs_number"], messy_number, "nhs_number")
    truth["messy_text"] = messy

    if feed in HOSPITAL_FEEDS:
        local = np.empty(n, dtype=object)
        for provider, numbers in local_ids.items():
            at = records["provider"] == provider
            local[at] = numbers[person[at]]
        columns["local_id"] = local
    if feed in NAMED_FEEDS:
        forename, surname = (
            people.forename[person].astype(object),
            people.surname[person].astype(object),
        )
        variant = rng.random(n) < rates.name_variant
        on_surname = rng.random(n) < 0.5
        forename[variant & ~on_surname] = _name_variant(rng, forename[variant & ~on_surname])
        surname[variant & on_surname] = _name_variant(rng, surname[variant & on_surname])
        columns["forename"], columns["surname"] = forename, surname
        truth["name_variant"] = variant
    return columns, truth
