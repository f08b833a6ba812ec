"""loadtest/run: the scenario-driven load-test runner (see main.py)."""
