"""Pseudonymisation, in the identifiable zone: keys, and the per-extract seam writer.

- `keys`: the secret master key (never in the repo or the store) and the purpose keys derived
  from it, so that linkage tokens and each analysis project's person ids cannot be joined.
- `extract`, `batch`: validate an extract, tokenise its identifiers (rules and tokens in
  `ldm.identifiers`) and write the seam file and its manifest.
"""
