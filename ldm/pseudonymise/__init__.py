"""Pseudonymisation, in the identifiable zone: keys, normalisation of identifiers, keyed tokens.

- `keys`: the secret master key (never in the repo or the store) and the purpose keys derived
  from it, so that linkage tokens and each analysis project's person ids cannot be joined.
- `normalise`: the documented rules that turn messy identifiers into one canonical text.
- `tokens`: HMAC-SHA256 tokens of normalised values, computed once per distinct value.
"""
