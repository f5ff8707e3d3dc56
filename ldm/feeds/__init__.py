"""Feed adapters: declarative specs that map each provider's extract onto canonical columns."""
