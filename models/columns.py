"""Column groups that several analyst tables share, each with the comment an analyst reads.

Mixins keep one definition per column group; `sort_order` keeps the key columns first and the
recorded demographics last in every table, whatever order the mixins are listed in.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from models.base import mapper_key

KEY_ORDER, DEMOGRAPHICS_ORDER, ADDED_ORDER = -100, 100, 200  # ADDED: columns added by a later migration
RECORD_KEY = ("batch_id", "row_number")


class ActivityRow:
    """Key, provenance and link of one record from one pseudonymised extract.

    The key is (batch_id, row_number): deterministic, so a batch can be traced back to its file row
    by row, and the same pair keys the record's entry in linkage.record_links. The ORM maps rows by
    it; the store does not index it (see models/base.py), except where a table says otherwise.
    """

    batch_id: Mapped[int] = mapped_column(
        sa.BigInteger,
        nullable=False,
        sort_order=KEY_ORDER,
        comment="Load batch the record arrived in (governance.batches.batch_id); with row_number, the key",
    )
    row_number: Mapped[int] = mapped_column(
        sa.BigInteger,
        nullable=False,
        sort_order=KEY_ORDER,
        comment="Row of the record in its pseudonymised extract, from 1; with batch_id, the key",
    )
    record_id: Mapped[int | None] = mapped_column(
        sa.BigInteger,
        sort_order=KEY_ORDER,
        comment="The provider's own record identifier as sent (identifies the record, not the person)",
    )
    person_id: Mapped[int | None] = mapped_column(
        sa.BigInteger,
        sort_order=KEY_ORDER,
        comment="Pseudonymous person (persons.person_id); NULL when linkage found no single match "
        "(unlinked records are kept, never dropped)",
    )
    link_step: Mapped[str | None] = mapped_column(
        sa.String,
        sort_order=KEY_ORDER,
        comment="Linkage step that linked the record (see governance/ linkage rules); NULL when unlinked",
    )
    link_weight: Mapped[float | None] = mapped_column(
        sa.Double,
        sort_order=KEY_ORDER,
        comment="Match weight of the link (higher is more certain); NULL when unlinked",
    )
    nhs_number_valid: Mapped[bool | None] = mapped_column(
        sa.Boolean,
        sort_order=KEY_ORDER,
        comment="True when the record carried an NHS number that passes the Modulus 11 check; "
        "false when it was missing or invalid",
    )
    # Added by migration 0003, so it is the last column of every activity table.
    record_digest: Mapped[int | None] = mapped_column(
        sa.BigInteger,
        sort_order=ADDED_ORDER,
        comment="Digest of the record's pseudonymised content (63 bits of DuckDB's hash): recognises the "
        "same record sent again; NULL for rows loaded before ldm recorded it",
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict:
        """The ORM identifies a row by its key whether or not the table indexes it."""
        return mapper_key(*RECORD_KEY)


class RecordedDemographics:
    """Coarse demographics and geography as recorded on the record itself, at the time of the event.

    They may differ from the person's current values in `persons` (people move, records are wrong);
    person-level analysis should usually take geography from `persons`.
    """

    year_of_birth: Mapped[int | None] = mapped_column(
        sa.SmallInteger, sort_order=DEMOGRAPHICS_ORDER, comment="Year of birth as recorded on the record"
    )
    month_of_birth: Mapped[int | None] = mapped_column(
        sa.SmallInteger, sort_order=DEMOGRAPHICS_ORDER, comment="Month of birth (1-12) as recorded"
    )
    sex: Mapped[str | None] = mapped_column(
        sa.String, sort_order=DEMOGRAPHICS_ORDER, comment="Sex as recorded: F or M (NULL if not known)"
    )
    lsoa21_code: Mapped[str | None] = mapped_column(
        sa.String,
        sort_order=DEMOGRAPHICS_ORDER,
        comment="2021 LSOA of the recorded postcode (ONS code); NULL if out of area or unknown",
    )
    lsoa11_code: Mapped[str | None] = mapped_column(
        sa.String, sort_order=DEMOGRAPHICS_ORDER, comment="2011 LSOA of the recorded postcode (ONS code)"
    )
    msoa11_code: Mapped[str | None] = mapped_column(
        sa.String, sort_order=DEMOGRAPHICS_ORDER, comment="2011 MSOA of the recorded postcode (ONS code)"
    )
    ward_code: Mapped[str | None] = mapped_column(
        sa.String, sort_order=DEMOGRAPHICS_ORDER, comment="Electoral ward of the recorded postcode (ONS code)"
    )
    imd_decile: Mapped[int | None] = mapped_column(
        sa.SmallInteger,
        sort_order=DEMOGRAPHICS_ORDER,
        comment="IMD 2019 decile of the 2011 LSOA: 1 most deprived, 10 least deprived",
    )
    imd_quintile: Mapped[int | None] = mapped_column(
        sa.SmallInteger,
        sort_order=DEMOGRAPHICS_ORDER,
        comment="IMD 2019 quintile of the 2011 LSOA: 1 most deprived, 5 least deprived",
    )
    age_at_event: Mapped[int | None] = mapped_column(
        sa.SmallInteger,
        sort_order=DEMOGRAPHICS_ORDER,
        comment="Age in whole years on the date of the event, from the recorded date of birth",
    )


MONTH_ONLY = "month_only"  # info key: the store keeps the month of this date, as its first day


def date_column(comment: str, month_only: bool = False) -> Mapped[datetime.date | None]:
    """A nullable DATE column with its comment; `month_only`: the store keeps only its month (the first
    day of it), because the day would single people out (`ldm.minimise`)."""
    return mapped_column(sa.Date, comment=comment, info={MONTH_ONLY: True} if month_only else {})


def code_column(comment: str) -> Mapped[str | None]:
    """A nullable text column holding a code or short label, with its comment."""
    return mapped_column(sa.String, comment=comment)
