"""What the reports compute from the ledger: the four reports, forecasts, budgets and savings advice."""
