"""Summaries and reports over the gold tables."""
