"""Person-level releases to approved analysis projects (`ldm release`).

A project approved by IG (governance.projects) gets a minimised extract: its person and record ids
are pseudonyms under the project's own key (HKDF purpose `release:<project>`), so two projects'
extracts cannot be joined with each other or with the store; dates are coarsened; the smallest
group over the quasi-identifiers is checked before anything is written; every release is recorded
in governance and the audit chain before it is made, and its outcome after. One module per job:
spec (what the project asked for), projects (who may receive), pseudonyms, kanon (the smallest
group rule), columns (what each released column becomes), record (governance), manifest, release.
"""
