"""pytest plugin: real Kafka and PostgreSQL for integration tests (work in progress)."""
