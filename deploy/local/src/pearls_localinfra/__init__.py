"""Docker-free Kafka and PostgreSQL for development and tests."""
