"""The report service: the Flask app, endpoint registry, parameters, ranges, scopes, ledger readers, OpenAPI."""
