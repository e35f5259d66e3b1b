"""The contracts every plugin kind implements: environment, strategy, agent, guard,
evaluator, and the types they share."""
