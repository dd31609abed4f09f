"""Lead intake: request validation, mapping to amoCRM shapes, durable queueing."""
