"""Campaign definitions, target lists, hand-off to campaign systems, measurement."""
