"""Built-in strategy plugins."""
