"""The dbt project's Python models, run by dbt-spark on the local Spark session.

dbt-spark 1.11 runs a Python model only on Databricks: its two submission methods (all_purpose_cluster
and job_cluster, in dbt/adapters/spark/python_submissions.py) upload the compiled model to a
Databricks workspace through its REST API and need its host, token and cluster. With `method:
session` there is no way to run one where dbt itself runs (dbt-labs/dbt-spark issue #1062; the
"session" submission method proposed in pull request #1063 was not merged). ldm runs dbt in its own
process, on the session it has just made (ldm.spark.build), so a model can run right there.

install() adds that submission method, `session`, to dbt-spark's adapter in this process: it runs the
compiled model, which is the model's own code followed by dbt-spark's materialisation code
(py_write_table: `df = model(dbt, spark)`, then `df.write ... saveAsTable(...)`), with `spark` bound
to the running session, exactly as a Databricks notebook would run it. The two Python models name it
in their config (`submission_method: session`), which dbt-duckdb ignores: it runs Python models in
its own process whatever the setting.

This extends dbt-spark at run time (a property of its adapter class is wrapped, nothing else): a
dbt-spark release that renames python_submission_helpers stops install() with an error saying so,
rather than building without the two models.
"""

from __future__ import annotations

from typing import Any

from ldm.errors import LdmError

SUBMISSION_METHOD = "session"


def _helper_class() -> type:
    from dbt.adapters.base.impl import PythonJobHelper

    class SessionPythonJobHelper(PythonJobHelper):
        """Runs a compiled dbt Python model in this process, on the active SparkSession."""

        def __init__(self, parsed_model: dict, credentials: Any) -> None:
            self.name = parsed_model.get("alias") or parsed_model["name"]

        def submit(self, compiled_code: str) -> None:
            from pyspark.sql import SparkSession

            spark = SparkSession.builder.getOrCreate()  # the session dbt-spark's SQL runs on
            code = compile(compiled_code, f"<dbt Python model {self.name}>", "exec")
            exec(code, {"__name__": f"dbt_python_model_{self.name}", "spark": spark})

    return SessionPythonJobHelper


def install() -> None:
    """Add the `session` submission method to dbt-spark's adapter in this process (idempotent)."""
    from dbt.adapters.spark.impl import SparkAdapter

    current = getattr(SparkAdapter, "python_submission_helpers", None)
    if not isinstance(current, property):
        raise LdmError(
            "this dbt-spark has no SparkAdapter.python_submission_helpers property: ldm cannot run the "
            "project's Python models on Spark with it (see ldm/spark/python_models.py)"
        )
    if getattr(current.fget, "adds_session_method", False):
        return
    helper = _helper_class()
    listed = current.fget

    def with_session(adapter: Any) -> dict[str, type]:
        return {**listed(adapter), SUBMISSION_METHOD: helper}

    with_session.adds_session_method = True  # type: ignore[attr-defined]
    SparkAdapter.python_submission_helpers = property(with_session)  # type: ignore[method-assign]
