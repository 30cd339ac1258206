"""The synthetic operator: parameters, population and churn, events per entity, injected
faults, writers and the orchestration that lands them (development and demo data only)."""
