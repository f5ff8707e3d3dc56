"""Probabilistic fallback: Fellegi-Sunter on token agreement, trained by EM, with Splink on DuckDB.

Only the record combinations the trace steps leave undecided are scored, against the whole
spine. The model is trained on a repeatable sample of all record combinations (most of which
carry an NHS number that agrees, which lets EM tell matches from non-matches), so it does not
depend on how few records happen to be left. u probabilities come from random pairs; the prior
(the probability that a random record-person pair matches) is the share of combinations the
deterministic steps linked, divided by the spine size, which scales the weights to the city.

A record is linked to its best-scoring person only if that weight reaches the threshold and the
runner-up is at least `margin` lower; otherwise it stays unlinked (or ambiguous, when two or
more persons pass the threshold within the margin).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.exceptions import EMTrainingException

COMPARED = (
    "nhs_key",
    "date_of_birth_token",
    "year_of_birth",
    "month_of_birth",
    "sex",
    "postcode_token",
    "postcode_district_token",
    "forename_token",
    "forename_phonetic_token",
    "forename_initial_token",
    "surname_token",
    "surname_phonetic_token",
    "surname_initial_token",
)
# The token columns: text compared only for equality (the rest are small already).
HASHED = tuple(c for c in COMPARED if c == "nhs_key" or c.endswith("_token"))

logger = logging.getLogger(__name__)
logging.getLogger("splink").setLevel(logging.ERROR)  # its training notes are not for the operator


@dataclass(frozen=True)
class ProbabilisticConfig:
    threshold: float = 8.0  # match weight (log2 Bayes factor including the prior) to link
    margin: float = 4.0  # best weight minus runner-up weight needed to link
    training_records: int = 200_000  # record combinations sampled to train the model
    min_training_records: int = 500  # below this, too little data to train: skip the step
    u_pairs: float = 2e6
    seed: int = 42


def _name_comparison(name: str) -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name=name,
        comparison_levels=[
            cll.NullLevel(f"{name}_token"),
            cll.ExactMatchLevel(f"{name}_token"),
            cll.ExactMatchLevel(f"{name}_phonetic_token"),
            cll.ExactMatchLevel(f"{name}_initial_token"),
            cll.ElseLevel(),
        ],
    )


def comparisons() -> list:
    """Agreement levels per identifier, strongest first."""
    dob = cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_levels=[
            cll.NullLevel("date_of_birth_token"),
            cll.ExactMatchLevel("date_of_birth_token"),
            cll.And(cll.ExactMatchLevel("year_of_birth"), cll.ExactMatchLevel("month_of_birth")),
            cll.Or(cll.ExactMatchLevel("year_of_birth"), cll.ExactMatchLevel("month_of_birth")),
            cll.ElseLevel(),
        ],
    )
    postcode = cl.CustomComparison(
        output_column_name="postcode",
        comparison_levels=[
            cll.NullLevel("postcode_token"),
            cll.ExactMatchLevel("postcode_token"),
            cll.ExactMatchLevel("postcode_district_token"),
            cll.ElseLevel(),
        ],
    )
    return [
        cl.ExactMatch("nhs_key"),
        dob,
        cl.ExactMatch("sex"),
        postcode,
        _name_comparison("surname"),
        _name_comparison("forename"),
    ]


BLOCKING_RULES = (
    block_on("date_of_birth_token"),
    block_on("postcode_token"),
    block_on("surname_phonetic_token", "year_of_birth"),
    block_on("postcode_district_token", "year_of_birth", "month_of_birth", "sex"),
)


def _training_rule(column: str) -> str:
    """Block on `column` for EM, naming the sides so that DuckDB joins records to the spine only.

    Splink joins the two tables stacked together and keeps the pairs whose sides come from
    different tables, with the records' side on the left ('records' sorts before 'spine'). Saying
    so in the rule gives exactly those pairs, without first making every spine-to-spine pair.
    """
    return f"l.{column} = r.{column} and l.source_dataset = 'records' and r.source_dataset = 'spine'"


def _table(con: duckdb.DuckDBPyConnection, name: str, select: str) -> None:
    """A table for Splink, each token replaced by its 128-bit MD5 number.

    Splink only asks whether two values are equal or null, which a 128-bit number answers as a
    64-character token does (two tokens that differ share a number with odds of about 1e-26 at
    city scale), while its joins on and copies of the values become several times cheaper.
    """
    columns = ", ".join(f"md5_number({c}) as {c}" if c in HASHED else c for c in COMPARED)
    con.execute(f"create or replace temp table {name} as select unique_id, {columns} from ({select})")


def score(con: duckdb.DuckDBPyConnection, config: ProbabilisticConfig) -> int:
    """Decide the combinations still pending by match weight; return how many were scored."""
    pending = con.execute("select count(*) from lk_combo anti join lk_decided using (combo_id)").fetchall()[
        0
    ][0]
    total, spine_rows, linked = con.execute(
        """select (select count(*) from lk_combo), (select count(distinct spine_row) from lk_spine),
                  (select count(*) from lk_decided where spine_row is not null)"""
    ).fetchall()[0]
    if pending == 0 or total < config.min_training_records or spine_rows < 2:
        return 0
    _table(
        con,
        "lk_pr_train",
        # Only combinations with something to compare besides the NHS number can teach m and u.
        f"select combo_id as unique_id, * from lk_combo "
        f"where date_of_birth_token is not null or postcode_token is not null "
        f"using sample {int(config.training_records)} rows (reservoir, {int(config.seed)})",
    )
    if con.execute("select count(*) from lk_pr_train").fetchall()[0][0] < config.min_training_records:
        return 0  # e.g. GP events: their leftovers carry nothing to compare but an NHS number
    _table(
        con,
        "lk_pr_spine",
        "select spine_row as unique_id, * from lk_spine qualify row_number() over (partition by spine_row) = 1",
    )
    _table(
        con,
        "lk_pr_pending",
        "select combo_id as unique_id, * from lk_combo anti join lk_decided using (combo_id)",
    )
    prior = max(linked, 1) / total / spine_rows
    db_api = DuckDBAPI(connection=con)
    spine = db_api.register("lk_pr_spine", dataset_display_name="spine")
    train = db_api.register("lk_pr_train", dataset_display_name="records")
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=list(BLOCKING_RULES),
        probability_two_random_records_match=min(prior, 0.5),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([spine, train], settings, log_level=None)
    linker.training.estimate_u_using_random_sampling(max_pairs=config.u_pairs, seed=config.seed)
    trained = 0
    for column in ("date_of_birth_token", "postcode_token"):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                _training_rule(column), estimate_without_term_frequencies=True
            )
            trained += 1
        except EMTrainingException:  # no pairs agree on this column: nothing to learn from it
            logger.info("EM training blocked on %s found no pairs", column)
        # Each session leaves its pairs behind (millions at city scale); the model keeps what it learnt.
        linker.table_management.delete_tables_created_by_splink_from_db()
    if not trained:
        return 0
    records = db_api.register("lk_pr_pending", dataset_display_name="pending")
    predictions = linker.inference.predict_between(
        records, spine, threshold_match_weight=config.threshold - config.margin
    )
    _decide(con, predictions.physical_name, config)
    linker.table_management.delete_tables_created_by_splink_from_db()
    for name in ("lk_pr_spine", "lk_pr_train", "lk_pr_pending"):
        con.execute(f"drop table {name}")
    return pending


def _decide(con: duckdb.DuckDBPyConnection, predictions: str, config: ProbabilisticConfig) -> None:
    """Best person per combination, if clearly ahead of the runner-up."""
    con.execute(
        f"""
        insert into lk_decided
        with pairs as (
            select case when source_dataset_l = 'pending' then unique_id_l else unique_id_r end as combo_id,
                   case when source_dataset_l = 'pending' then unique_id_r else unique_id_l end as spine_row,
                   match_weight
            from {predictions}
        ), ranked as (
            select combo_id,
                   arg_max(spine_row, match_weight) as best_row,
                   max(match_weight) as best,
                   count(*) filter (where match_weight >= max_weight_minus_margin) as close
            from (select *, max(match_weight) over (partition by combo_id) - {config.margin}
                      as max_weight_minus_margin from pairs)
            group by combo_id
        )
        select combo_id,
               case when close = 1 then best_row end,
               case when close = 1 then 'probabilistic' else 'ambiguous:probabilistic' end,
               best,
               close
        from ranked
        where best >= {config.threshold}
        """
    )
