"""Identifiers as ldm reads them: the rules that normalise them and the keyed tokens that replace them.

Below every stage that handles identifiers (feeds, validation, pseudonymisation, linkage), and
importing none of them, so that each stage normalises and tokenises with the very same rules:
two records of one person link only if their identifiers give the same text and the same token.

- `normalise`: the documented rules that turn messy identifiers into one canonical text.
- `tokens`: HMAC-SHA256 tokens of normalised values, computed once per distinct value.
"""
