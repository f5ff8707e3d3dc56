"""Linkage and marts on Apache Spark: the same linkage engine with Splink's Spark backend, and the
same dbt project run by dbt-spark, on a local Spark session.

DuckDB on one machine is ldm's embedded engine; a region or a nation outgrows it, and then linkage
and the marts run on an existing distributed engine (DESIGN.md, "When a city outgrows one machine"). Each
module has one job:

    session.py        the local SparkSession: warehouse, Derby metastore and logs in a work folder
    workspace.py      the linkage engine's working tables on the session (ldm.linkage.workspace)
    tables.py         the store's analyst and governance tables (dbt's sources, the audit chain),
                      copied to Parquet tables in Spark; never its linkage schema
    udfs.py           ldm.stats' interval functions registered on the session, as on DuckDB
    python_models.py  the project's dbt Python models run on the session (dbt-spark runs them only
                      on Databricks)
    build.py          build_marts_spark(): all of the above, then `dbt build --target spark`;
                      open_marts(): a built warehouse's marts, on a new session
    warehouse.py      the warehouse beside the store: put back if a run fails, its marts copied into
                      the store (where the audit seals them), and all it holds that the audit covers
                      checked against the store under the audit's keyed digest

Spark is an optional extra (`pip install ldm[spark]`, with a Java runtime): the rest of ldm imports
this package only where `engine = "spark"` or `--spark-dir` asks for it (ldm.pipeline, `ldm audit
verify`, `ldm bench`); ldm.linkage and ldm.load take a workspace without importing it.
"""
