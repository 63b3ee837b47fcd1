"""Bundled example data: a realistic agency export for the demo and the tests."""
