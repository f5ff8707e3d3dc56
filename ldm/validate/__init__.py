"""Row-level validation of extracts with Great Expectations suites (one per feed)."""
