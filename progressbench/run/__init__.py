"""The run loop and what it drives: config and resume rules, one child's pipeline, the agent
session, prompts, edits, store rows, progress."""
