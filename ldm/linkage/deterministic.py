"""The deterministic trace steps, in the spirit of the NHS Master Person Service, as SQL.

Each step joins the record combinations not yet decided to the spine on the step's tokens and
counts the distinct persons that fit. One person: linked. Two or more: not linked, logged as
ambiguous, and not offered to later steps (a weaker rule must not choose between persons that
a stronger one could not tell apart). None: left for the next step.

Steps 3 to 5 never accept a person whose valid NHS number differs from the record's valid NHS
number: two valid numbers that differ belong to two people (a mistyped or transposed digit
fails Modulus 11, so it is not valid), and the MPS treats that as a conflict, not a near miss.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldm.dialects import current as dialect
from ldm.linkage.working import COMBO, DECIDED, SPINE, learnt
from ldm.linkage.workspace import Workspace
from ldm.sql import literal

NHS_CONFLICT = "c.nhs_key is not null and s.nhs_key is not null and c.nhs_key <> s.nhs_key"


@dataclass(frozen=True)
class Step:
    """One trace step: the tokens that must be present and equal, and any further condition."""

    name: str
    equal: tuple[str, ...]
    condition: str = "true"
    nhs_conflict_check: bool = True
    source: str = f"{SPINE} s"  # what the candidates are drawn from
    alias: str = "s"  # the alias in `source` whose columns must equal the record's


DETERMINISTIC_STEPS: tuple[Step, ...] = (
    Step("nhs_number_dob", ("nhs_key", "date_of_birth_token"), nhs_conflict_check=False),
    Step("nhs_number", ("nhs_key",), nhs_conflict_check=False),
    Step("dob_sex_postcode", ("date_of_birth_token", "sex", "postcode_token")),
    # Forename initials only decide when one side has no full forename: two different forenames
    # with the same initial (twins, or two people of one common surname born on one day) do not.
    Step(
        "dob_names",
        ("date_of_birth_token",),
        "(c.surname_token = s.surname_token or c.surname_phonetic_token = s.surname_phonetic_token)"
        " and (c.forename_token = s.forename_token"
        " or c.forename_phonetic_token = s.forename_phonetic_token"
        " or ((c.forename_token is null or s.forename_token is null)"
        " and c.forename_initial_token = s.forename_initial_token))"
        " and not coalesce(c.sex <> s.sex, false)",
    ),
    # Local ids learnt from earlier links (see `learn_local_ids`), joined to the spine for the
    # NHS number conflict check.
    Step(
        "local_id",
        ("local_id_token",),
        source=f"{learnt('local_id_token')} l join {SPINE} s on s.spine_row = l.spine_row",
        alias="l",
    ),
    # Valid NHS numbers learnt from links made without them (steps 3 to 5), for spine persons
    # whose own registration has no valid NHS number: their records that carry nothing but an
    # NHS number (GP events) could not link otherwise.
    Step(
        "learnt_nhs_number",
        ("nhs_key",),
        source=f"{learnt('nhs_key')} l join {SPINE} s on s.spine_row = l.spine_row and s.nhs_key is null",
        alias="l",
        nhs_conflict_check=False,
    ),
)

# Steps whose links are trusted to teach an identifier -> person mapping, per learnt identifier.
TEACHING_STEPS = {
    "local_id": ("nhs_number_dob", "nhs_number"),
    "learnt_nhs_number": ("dob_sex_postcode", "dob_names", "local_id"),
}
LEARNT_COLUMN = {"local_id": "local_id_token", "learnt_nhs_number": "nhs_key"}


def step_sql(step: Step) -> str:
    """The decisions (rows of lk_decided) of the pending combinations this step finds one or more
    persons for."""
    conditions = [f"c.{column} = {step.alias}.{column}" for column in step.equal]
    conditions.append(step.condition)
    if step.nhs_conflict_check:
        conditions.append(f"not coalesce({NHS_CONFLICT}, false)")
    return f"""
        select c.combo_id,
               case when count(distinct s.spine_row) = 1 then min(s.spine_row) end as spine_row,
               case when count(distinct s.spine_row) = 1 then {literal(step.name)}
                    else {literal("ambiguous:" + step.name)} end as step,
               cast(null as double) as weight,
               count(distinct s.spine_row) as candidates
        from {step.source}
        join (select * from {COMBO} {dialect().anti_join()} {DECIDED} using (combo_id)) c
          on {" and ".join(conditions)}
        group by c.combo_id
    """


def learn(ws: Workspace, step: Step) -> None:
    """identifier -> person, from the spine's own values and from links of the teaching steps.

    An identifier seen with two or more persons is kept with all of them, so the step finds
    it ambiguous instead of trusting either.
    """
    column = LEARNT_COLUMN[step.name]
    teaching = ", ".join(literal(name) for name in TEACHING_STEPS[step.name])
    ws.create(
        learnt(column),
        f"""
        select distinct {column}, spine_row from (
            select {column}, spine_row from {SPINE} where {column} is not null
            union all
            select c.{column}, d.spine_row
            from {DECIDED} d join {COMBO} c using (combo_id)
            where d.step in ({teaching}) and c.{column} is not null
        )
        """,
    )


def run_step(ws: Workspace, step: Step) -> None:
    if step.name in LEARNT_COLUMN:
        learn(ws, step)
    ws.append(DECIDED, step_sql(step))
    if step.name in LEARNT_COLUMN:
        ws.drop(learnt(LEARNT_COLUMN[step.name]))  # a million rows at city scale
