"""Persons and the spine: founding persons, their latest tokens, their analyst row, what they teach.

A registration that links to no one founds a person (one per valid NHS number, else per row); the
spine (`linkage.person_keys`) keeps each person's latest registration tokens, `main.persons` one
analyst row per person from their latest registration, and `linkage.person_local_ids` and
`linkage.person_evidence` what their records taught (ldm.load.evidence).
"""

from __future__ import annotations

from ldm import person_rules
from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.linkage.columns import VALID_NHS_TOKEN, columns_of
from ldm.load import evidence
from ldm.load.batches import BatchLoad, now
from ldm.load.working import INCOMING, LATEST, NEW_EVIDENCE, NEW_IDS, REPLACED_KEYS, SUPERSEDED_PERSONS


def add_new_persons(con) -> int:
    """Registrations that match no one found new persons (one per valid NHS number, else per row)."""
    founder = f"coalesce({VALID_NHS_TOKEN}, 'row:' || row_number)"
    unmatched = f"{INCOMING}.person_id is null and {INCOMING}.link_step = 'unlinked'"
    # Ids are drawn from the sequence, then given to the founders in token order: the same extracts
    # under the same key found the same person ids, however the engine's threads ran the query.
    con.execute(
        f"""create or replace temp table {NEW_IDS} as
            with founders as (
                select founder, row_number() over (order by founder) as rank
                from (select {founder} as founder from {INCOMING} where {unmatched} group by 1)
            ),
            issued as (
                select person_id, row_number() over (order by person_id) as rank
                from (select nextval('linkage.person_id_seq') as person_id
                      from range((select count(*) from founders)))
            )
            select founders.founder, issued.person_id from founders join issued using (rank)"""
    )
    reused = con.execute(
        f"select min(person_id) from {NEW_IDS} where person_id in (select person_id from linkage.person_keys)"
    ).fetchall()[0][0]
    if reused is not None:
        raise LdmError(
            f"linkage.person_id_seq issued person id {reused}, which a person already has (was the sequence "
            "reset?); nothing was loaded. See: ldm audit verify"
        )
    con.execute(
        f"""update {INCOMING} set person_id = n.person_id, link_step = 'new_person'
            from {NEW_IDS} n where {unmatched} and {founder} = n.founder"""
    )
    return con.execute(f"select count(*) from {NEW_IDS}").fetchall()[0][0]


KEY_COLUMNS = (
    "date_of_birth_token",
    "sex",
    "postcode_token",
    "postcode_district_token",
    "surname_token",
    "surname_phonetic_token",
    "surname_initial_token",
    "forename_token",
    "forename_phonetic_token",
    "forename_initial_token",
)


def latest_first() -> str:
    """Rows ordered by (registration_start, row_number), a missing start after every date (row numbers
    are positive and below 2^63)."""
    return dialect().date_number_key("registration_start", "row_number")


def refresh_person_keys(con, batch_id: int) -> None:
    """Spine tokens from each person's latest registration row (new persons are inserted)."""
    latest = ", ".join(KEY_COLUMNS)
    arg_max = dialect().arg_max
    con.execute(
        f"""create or replace temp table {LATEST} as
            select person_id, {arg_max(VALID_NHS_TOKEN, "o")} as nhs_number_token,
                   {", ".join(f"{arg_max(c, 'o')} as {c}" for c in KEY_COLUMNS)}
            from (select *, {latest_first()} as o from {INCOMING} where person_id is not null) group by person_id"""
    )
    con.execute(
        f"""update linkage.person_keys k set nhs_number_token = coalesce(l.nhs_number_token, k.nhs_number_token),
                {", ".join(f"{c} = coalesce(l.{c}, k.{c})" for c in KEY_COLUMNS)}, last_batch_id = ?
            from {LATEST} l where l.person_id = k.person_id""",
        [batch_id],
    )
    con.execute(
        f"""insert into linkage.person_keys (person_id, nhs_number_token, {latest}, first_batch_id, last_batch_id)
            select person_id, nhs_number_token, {latest}, ?, ? from {LATEST}
            where person_id not in (select person_id from linkage.person_keys)""",
        [batch_id, batch_id],
    )


CHANGED_PERSONS = f"select person_id from {INCOMING} union select person_id from {SUPERSEDED_PERSONS}"


def refresh_persons(con, batch_id: int) -> None:
    """One analyst row per person, from the latest registration the store holds for them, and the
    ethnic category of the latest that states one (ldm.person_rules).

    Refreshed: the persons of the batch's rows, and those whose earlier registration a revision replaced.
    """
    con.execute(f"delete from main.persons where person_id in ({CHANGED_PERSONS})")
    latest = [
        dialect().arg_max(column, "o")
        for column in ("year_of_birth", "month_of_birth", "sex", "practice_code", "lsoa21_code", "lsoa11_code",
                       "msoa11_code", "ward_code", "imd_decile", "imd_quintile")
    ]  # fmt: skip
    con.execute(
        f"""insert into main.persons (person_id, year_of_birth, month_of_birth, sex, practice_code, lsoa21_code,
                lsoa11_code, msoa11_code, ward_code, imd_decile, imd_quintile, date_of_death, registered,
                first_batch_id, last_batch_id, ethnic_category)
            select person_id, {", ".join(latest)}, max(date_of_death),
                   {dialect().arg_max("registration_end is null", "o")} and max(date_of_death) is null,
                   min(batch_id), ?, {person_rules.ethnic_category()}
            from (select *, {person_rules.latest_registration()} as o from main.registrations
                  where person_id in ({CHANGED_PERSONS}))
            group by person_id""",
        [batch_id],
    )


def learn_local_ids(con, batch_id: int) -> None:
    if "local_id_token" not in columns_of(con, INCOMING):
        return
    known = dialect().pair_in(("person_id", "local_id_token"), "linkage.person_local_ids", negated=True)
    con.execute(
        f"""insert into linkage.person_local_ids (person_id, local_id_token, first_batch_id)
           select distinct person_id, local_id_token, ? from {INCOMING}
           where link_step in ('nhs_number_dob', 'nhs_number') and local_id_token is not null
             and {known}""",
        [batch_id],
    )


def registration_identities(con) -> str:
    """The batch's registrations not withheld, as identities with their person (ldm.load.evidence)."""
    columns = evidence.identity_select(set(columns_of(con, INCOMING)), VALID_NHS_TOKEN)
    return f"(select person_id, link_step, {columns} from {INCOMING} where not withheld)"


def learn_evidence(con, batch_id: int, feed: str, new: str, load: BatchLoad) -> None:
    """Keep the new identities of `new` (rows of `evidence.new_evidence_sql`) as the person's evidence."""
    load.evidence_added = con.execute(evidence.insert_sql(new, feed), [batch_id, now()]).fetchall()[0][0]
    load.evidence_conflicts = con.execute(f"select count(*) from {new} where conflict").fetchall()[0][0]


def keep_replaced_keys(con) -> None:
    """`replaced_keys`: the spine tokens of the batch's persons before the batch refreshes them."""
    con.execute(f"create or replace temp table {REPLACED_KEYS} as " + evidence.replaced_keys_sql(INCOMING))


def learn_registration_evidence(con, batch_id: int, feed: str, load: BatchLoad) -> None:
    """Keep what the batch's registrations, and the tokens they replaced, teach (ldm.load.evidence).

    Run after `refresh_person_keys`, so that each person's latest registration, now on the spine,
    is not kept twice."""
    con.execute(
        f"create or replace temp table {NEW_EVIDENCE} as "
        + evidence.new_evidence_sql(
            f"{evidence.candidates_sql(registration_identities(con))} union all select * from {REPLACED_KEYS}",
            f"({evidence.spine_sql()})",
        )
    )
    learn_evidence(con, batch_id, feed, NEW_EVIDENCE, load)
    con.execute(f"drop table {REPLACED_KEYS}")
    con.execute(f"drop table {NEW_EVIDENCE}")
