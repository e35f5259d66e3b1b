"""Built-in agent, guard and evaluator plugins."""
