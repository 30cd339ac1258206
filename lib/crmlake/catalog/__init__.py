"""The table registry (name, grain and key, partitions, schema, personal-data class) and the
only Delta I/O: reads, appends, scoped replaces, merges, versions, restore."""
