"""The API blueprints: reports and exports, activity and conversations, forecasts, budgets, advice, latency."""
