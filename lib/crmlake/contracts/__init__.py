"""Source entity schemas (landing and silver) and the row rules a record must pass."""
