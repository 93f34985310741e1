"""HTTP handlers: what a request may do. Each function is named by an operationId."""
