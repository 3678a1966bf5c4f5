"""Physics and performance metrics."""
