"""tongdai load-test runner: starts the systems under test, drives them with SIPp,
measures what they cost, and writes the report. Python 3 standard library only."""
