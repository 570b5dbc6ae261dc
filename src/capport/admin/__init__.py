"""The operator's HTTP API: clients, users, vouchers, history and metrics."""
