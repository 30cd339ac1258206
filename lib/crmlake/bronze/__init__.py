"""Bronze: an append-only copy of what arrived, and the registry of files taken."""
