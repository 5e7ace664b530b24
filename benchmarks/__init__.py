"""Speed and quality measurements (not part of the test suite)."""
