"""Disclosure-controlled export of the aggregate marts (`ldm export`).

The rules are data (governance/sdc_rules.yaml) so that an IG lead can read and review them; this
package only applies them, in DuckDB SQL, and records which rules made each export.
"""
