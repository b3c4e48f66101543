"""Test utilities: fakes standing in for heavy processes."""
