"""Support for the dbt marts in dbt_project/: the dbt-duckdb plugin that exposes ldm.stats to SQL."""
