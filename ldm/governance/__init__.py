"""Information governance: the audit chain and the accounts IG leads read."""
