"""Postcode to small-area geography and deprivation, from the reference data shipped with ldm.

A full postcode is an identifier and never leaves the identifiable zone; what leaves is the area it
lies in (LSOA 2021 and 2011, ward, MSOA) and its IMD 2019 decile and quintile. IMD is published on
LSOA 2011, so a postcode reaches it through the LSOA 2011/2021 lookup. Where several LSOA 2011 were
merged into one LSOA 2021 (change code M), the lowest-numbered LSOA 2011 is used; the IMD deciles of
merged areas are close, and Leeds has two such areas.
"""

from __future__ import annotations

from functools import cache

import duckdb
import pyarrow as pa

from ldm.dialects import current as dialect
from ldm.reference import reference_path

AREA_COLUMNS = ("lsoa21_code", "lsoa11_code", "msoa11_code", "ward_code", "imd_decile", "imd_quintile")


@cache
def postcode_areas() -> pa.Table:
    """One row per Leeds postcode: postcode, lsoa21_code, lsoa11_code, msoa11_code, ward_code, IMD."""
    con = duckdb.connect()
    sql = dialect()

    def lookup(name: str) -> str:
        return sql.csv(reference_path(name), all_varchar=True)

    return con.sql(
        f"""
        with lsoa11_of as (
            select lsoa21_code, min(lsoa11_code) as lsoa11_code
            from {lookup("leeds_lsoa11_to_lsoa21_lookup.csv")}
            group by lsoa21_code
        )
        select p.pcds as postcode, p.lsoa21_code, l.lsoa11_code, m.MSOA11CD as msoa11_code,
               p.ward_code, cast(i.imd_decile as tinyint) as imd_decile,
               cast({sql.integer_divide("(cast(i.imd_decile as integer) + 1)", "2")} as tinyint) as imd_quintile
        from {lookup("leeds_postcode_ward_lsoa21.csv")} p
        left join lsoa11_of l using (lsoa21_code)
        left join {lookup("leeds_lsoa11_msoa11_lad.csv")} m
            on m.LSOA11CD = l.lsoa11_code
        left join {lookup("imd2019_leeds_lsoa11.csv")} i
            using (lsoa11_code)
        order by postcode
        """
    ).to_arrow_table()
