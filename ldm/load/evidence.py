"""Linkage evidence kept across batches: every identity that linked a record to a person.

A GP registration founds a person with the identifiers it carries, and `linkage.person_keys` keeps
the latest registration's tokens. Other records know things the registration does not: a spell
carries a valid NHS number where the registration's failed its check, an A&E attendance the new
postcode of someone who moved. Kept only inside one batch, that knowledge was lost: GP events,
which carry nothing but an NHS number, stayed unlinked for people whose registration had none,
month after month. So each identity (a combination of tokens) that a deterministic step linked a
record with, and that the person's evidence did not already hold, is written to
`linkage.person_evidence` with its feed, step, batch and time, and every later batch links
through all of it (`spine_sql`).

Rules (governance/linkage_rules.md):
- Only deterministic links teach: their identifiers agreed exactly. A probabilistic link is an
  inference, and an identity learnt from it could carry a wrong link on to records that agree
  with nothing else.
- A local patient id is learnt only from an NHS-number link, as inside a batch
  (`ldm.linkage.deterministic.TEACHING_STEPS`).
- An identity is new unless one row of the person's evidence agrees with every identifier it
  carries; a subset of what is held adds nothing.
- An identity whose valid NHS number the spine holds for another person is a conflict: it is not
  learnt, but counted (`conflicts`), and the records that would link through the number are
  ambiguous at the NHS-number steps, never guessed.
- A person who opts out loses their evidence with their records; their latest registration
  tokens stay in `person_keys`, so that their later records are recognised and withheld.
"""

from __future__ import annotations

from collections.abc import Collection

from ldm.dialects import current as dialect
from ldm.linkage.deterministic import DETERMINISTIC_STEPS, TEACHING_STEPS
from ldm.sql import literal
from models.linkage import PersonEvidence, PersonKey

BOOKKEEPING = ("evidence_id", "person_id", "feed", "link_step", "first_batch_id", "first_seen_at")
IDENTITY = tuple(c.name for c in PersonEvidence.__table__.columns if c.name not in BOOKKEEPING)
ON_PERSON_KEYS = frozenset(c.name for c in PersonKey.__table__.columns)
FOUNDING_STEP = "new_person"
# A person's registration tokens that a newer registration replaced on person_keys.
REPLACED_REGISTRATION = "registration"
EVIDENCE_STEPS = (FOUNDING_STEP, REPLACED_REGISTRATION, *(step.name for step in DETERMINISTIC_STEPS))
LOCAL_ID_STEPS = TEACHING_STEPS["local_id"]
# Year and month of birth restate the date of birth token's (the spine's registration rows lack
# them): kept with an identity, for the probabilistic step, but never what makes it new.
DERIVED = frozenset({"year_of_birth", "month_of_birth"})
COMPARED = tuple(name for name in IDENTITY if name not in DERIVED)
NHS = "nhs_number_token"
SPINE_COLUMNS = ("person_id", *IDENTITY, "evidence_rank")  # the columns of `spine_sql`, in order


def _in(names) -> str:
    return ", ".join(literal(name) for name in names)


def _person_nhs(only: str) -> str:
    """Each person's one valid NHS number, from their registration or their evidence; none when
    their evidence holds two (a conflict: then no number is lent to their other identities)."""
    return f"""select person_id, min(t) as t from (
                   select person_id, {NHS} as t from linkage.person_keys where {NHS} is not null{only}
                   union select person_id, {NHS} from linkage.person_evidence where {NHS} is not null{only})
               group by person_id having count(distinct t) = 1"""


def spine_sql(persons: str | None = None) -> str:
    """The spine linkage reads: every person's latest registration tokens (one row per local id
    known for them) and every identity of their evidence; only the persons the select `persons`
    names, if given (each person's rows depend on their own rows alone).

    Each row carries the person's valid NHS number where it has none of its own, so the steps that
    refuse a conflicting NHS number refuse it whichever of the person's identities matched.
    """

    def only(column: str, joined: str = "where") -> str:
        return f" {joined} {column} in ({persons})" if persons else ""

    def column(name: str, alias: str) -> str:
        if name == NHS:
            return f"coalesce({alias}.{NHS}, n.t) as {NHS}"
        if alias == "k" and name == "local_id_token":
            return "l.local_id_token"
        if alias == "k" and name not in ON_PERSON_KEYS:
            return f"null as {name}"
        return f"{alias}.{name}"

    keys = ", ".join(column(name, "k") for name in IDENTITY)
    evidence = ", ".join(column(name, "e") for name in IDENTITY)
    registrations = f"""select k.person_id, {keys}, 0 as evidence_rank
        from linkage.person_keys k left join linkage.person_local_ids l using (person_id)
        left join n using (person_id){only("k.person_id")}"""
    learnt = f"""select e.person_id, {evidence}, 1 as evidence_rank
        from linkage.person_evidence e left join n using (person_id){only("e.person_id")}"""
    both = dialect().union_all_by_name([(registrations, SPINE_COLUMNS), (learnt, SPINE_COLUMNS)])
    return f"""
        with n as ({_person_nhs(only("person_id", "and"))})
        {both}"""


def spine_persons_sql(batch_ids: Collection[int]) -> str:
    """The persons whose rows of the spine (`spine_sql`, with main.persons' year and month of birth)
    the batches `batch_ids` wrote: their new evidence and local ids, and their refreshed keys and
    analyst rows, each stamped with the batch's id. A batch that founds persons (new spine rows to
    number) or deletes rows (no id left to find them by) is not one of these; after it the spine is
    copied whole (ldm.load.linking.LinkingSession)."""
    batches = ", ".join(str(int(batch_id)) for batch_id in batch_ids)
    return f"""select person_id from linkage.person_evidence where first_batch_id in ({batches})
               union select person_id from linkage.person_local_ids where first_batch_id in ({batches})
               union select person_id from linkage.person_keys where last_batch_id in ({batches})
               union select person_id from main.persons where last_batch_id in ({batches})"""


def identity_select(present: Collection[str], nhs: str = NHS) -> str:
    """The identity columns of a relation that has `present` (null for those it lacks), its valid NHS
    number token given by the expression `nhs`."""
    return ", ".join(
        f"{nhs} as {NHS}" if name == NHS else name if name in present else f"null as {name}"
        for name in IDENTITY
    )


def replaced_keys_sql(persons: str) -> str:
    """The person_keys rows of the persons `persons` selects, as candidate identities: taken before
    a registration batch refreshes them, so that an earlier address is not forgotten."""
    return f"""select person_id, {literal(REPLACED_REGISTRATION)} as link_step, {identity_select(ON_PERSON_KEYS)}
               from linkage.person_keys where person_id in (select person_id from {persons})"""


def candidates_sql(decided: str) -> str:
    """Identities of `decided` (person_id, link_step and the identity columns, NHS number valid
    only) that may teach: linked by a deterministic step, local ids by an NHS-number step only."""
    columns = ", ".join(
        f"case when link_step in ({_in(LOCAL_ID_STEPS)}) then {name} end as {name}"
        if name == "local_id_token"
        else name
        for name in IDENTITY
    )
    return f"""select person_id, link_step, {columns} from {decided}
               where person_id is not null and link_step in ({_in(EVIDENCE_STEPS)})"""


def new_evidence_sql(candidates: str, held: str) -> str:
    """The identities of `candidates` (from `candidates_sql`) that `held` (the spine: person_id and
    the identity columns) does not already hold for their person, once each, with `conflict`:
    their NHS number is held for another person.

    Held means one row of the person's agrees with every identifier the identity carries (year and
    month of birth aside, which restate its date of birth).
    """
    carries = " or ".join(f"c.{name} is not null" for name in COMPARED)
    within = " and ".join(f"(c.{name} is null or c.{name} = h.{name})" for name in COMPARED)
    names = ", ".join(f"c.{name}" for name in IDENTITY)
    # Each identity once, with every held row that agrees with it; new if there is none. (A `not
    # exists` said the same, but DuckDB answered it with a deduplicated copy of the candidates and a
    # join on all their columns: 2.6 s against 2.0 s for an outpatient batch at city scale.) The
    # conflict is then looked for among the few new ones, as "another person holds the number" =
    # its holders are not just them.
    return f"""
        with new as (
            select c.person_id, min(c.link_step) as link_step, {names}
            from ({candidates}) c left join {held} h on h.person_id = c.person_id and {within}
            where ({carries})
            group by c.person_id, {names}
            having count(h.person_id) = 0
        ), holders as (
            select {NHS}, min(person_id) as lowest, max(person_id) as highest from {held}
            where {NHS} in (select {NHS} from new) group by {NHS}
        )
        select new.*, coalesce(k.lowest <> new.person_id or k.highest <> new.person_id, false) as conflict
        from new left join holders k using ({NHS})"""


def insert_sql(new: str, feed: str) -> str:
    """Insert the identities of `new` (from `new_evidence_sql`) that are not conflicts; parameters:
    the batch id and the time it was loaded."""
    names = ", ".join(IDENTITY)
    return f"""insert into linkage.person_evidence (person_id, feed, link_step, {names}, first_batch_id,
                   first_seen_at)
               select person_id, {literal(feed)}, link_step, {names}, ?, ? from {new} where not conflict"""


def remove_sql(persons: str) -> str:
    """Delete the evidence of the persons `persons` (a relation with person_id) selects."""
    return f"delete from linkage.person_evidence where person_id in (select person_id from {persons})"
