"""Silver: identity (E.164 + HMAC), classification and de-duplication, the subscriber history,
and the ingest run that carries landing through bronze into silver."""
