"""An evaluator that raises instead of returning a result (a task author's mistake, or an
evaluator that fails on every program): the program's evaluation fails with its message."""


def evaluate(program_path):
    raise RuntimeError("this evaluator is broken: it raises for every program")
