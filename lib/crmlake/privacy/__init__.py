"""Erasure of a subscriber across every table the catalog marks as holding one."""
