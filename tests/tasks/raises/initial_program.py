"""A program for an evaluator that always raises."""

# EVOLVE-BLOCK-START
VALUE = 1.0
# EVOLVE-BLOCK-END


def value() -> float:
    return VALUE
