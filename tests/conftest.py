"""Shared test set-up: fixture notebooks are run by the runner tests, not collected by nbval."""
collect_ignore = ["fixtures"]
