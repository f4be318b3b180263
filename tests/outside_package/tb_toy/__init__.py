"""Toy methods of an outside package (tests/test_outside_methods.py)."""
