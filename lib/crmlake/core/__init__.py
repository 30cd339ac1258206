"""What every job shares: typed configuration, named errors and exit codes, logging, the
Spark session, the command line and the job runner."""
