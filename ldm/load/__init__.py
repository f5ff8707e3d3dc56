"""The pseudonymised zone: load pseudonymised extracts into the store, link them, apply opt-outs."""
