"""`genai-meter serve`: OTLP/HTTP and OTLP/gRPC receivers, dedup, auth, lifecycle and worker processes."""
