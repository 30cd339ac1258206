"""``python -m crmlake.catalog``: print the table map the README holds."""

from crmlake.catalog.registry import markdown

print(markdown())
