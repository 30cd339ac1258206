"""Gold: subscriber-days (incremental), point-in-time features, churn labels, KPIs and cohorts."""
