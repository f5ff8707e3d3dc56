"""Settings of a synthetic extract set: its size, its period, and how messy it is.

Every noise rate is the share of rows (or people, where stated) that get that fault. The defaults are
chosen to look like real NHS extracts; tests check that the output matches the configured rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from models.feeds import FEED_TABLES

FEEDS = (*FEED_TABLES, "opt_out")  # the feeds the store loads, opt-out list last
# The activity feeds that ldm.linkage.engine_only links in one pass against a spine of current
# registrations; deaths are not among them (the dead are not on such a spine): the store's scoring
# (ldm.linkage.scoring) scores every feed's links, deaths included.
ACTIVITY_FEEDS = FEEDS[1:6]


@dataclass(frozen=True)
class NoiseRates:
    # Share of rows with no NHS number, by feed (A&E and community lose it most often).
    missing_nhs_number: dict[str, float] = field(
        default_factory=lambda: {
            "gp_registrations": 0.002,
            "gp_events": 0.0,
            "apc_spells": 0.01,
            "op_appointments": 0.01,
            "ae_attendances": 0.06,
            "community_contacts": 0.15,
            "deaths": 0.01,  # registrars record it from the medical certificate or the NHS spine
        }
    )
    wrong_check_digit: float = 0.002  # last digit mistyped: fails Modulus 11
    transposed_digits: float = 0.002  # two adjacent digits swapped: fails Modulus 11
    # Feeds whose NHS number is copied from a system record, not keyed per row, so they carry no
    # keying slips: a GP system writes each event with the number held on the patient's record.
    system_held_nhs_number: tuple[str, ...] = ("gp_events",)
    dob_typo: float = 0.005  # day and month swapped, a day out, or a year out
    stale_postcode: float = 0.5  # share of a mover's later hospital/community rows with the old address
    name_variant: float = 0.03  # spelling variant of forename or surname (feeds with names)
    duplicate_row: float = 0.005  # row sent twice
    messy_text: float = 0.03  # stray whitespace and lower case in identifiers and postcodes
    malformed: float = 0.001  # impossible date or unknown code


@dataclass(frozen=True)
class SampleConfig:
    persons: int
    seed: int
    as_of: date = date(2025, 3, 31)  # extract date: end of financial year 2024/25
    activity_years: int = 2  # activity extracts cover this many years up to as_of
    out_of_area_share: float = 0.04  # hospital patients living outside Leeds, per Leeds person
    mover_share: float = 0.08  # people who moved house during the activity period
    practice_change_share: float = 0.03  # people who changed practice during the period
    left_area_share: float = 0.02  # people who deregistered (moved away) during the period
    opt_out_share: float = 0.03  # people on the national data opt-out list
    noise: NoiseRates = field(default_factory=NoiseRates)

    @property
    def window_start(self) -> date:
        start = self.as_of.replace(year=self.as_of.year - self.activity_years)
        return start + timedelta(days=1)
