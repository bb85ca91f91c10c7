"""Ways into the notifications service: Kafka consumers and the HTTP API."""
