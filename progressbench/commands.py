"""Commands that live beside ``cli.py`` (which registers them): flags and output only, heavy
modules imported inside each command so ``--help`` stays instant."""

from __future__ import annotations

import json
import sys

import click


@click.command("eval")
@click.argument("program", type=click.Path())
@click.option("--env", "env", help="environment (`progressbench plugins`), or task:PATH")
@click.option("--variant", help="environment variant, e.g. nanogpt: tiny | speedrun")
@click.option(
    "--env-option", "env_opts", multiple=True, metavar="KEY=VALUE",
    help="environment setting passed to its harness (repeatable)",
)  # fmt: skip
@click.option("--timeout", "timeout_s", type=float, help="wall-time limit per evaluation, seconds")
@click.option("--seed", type=int, help="seed of the evaluation [0]")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option(
    "--repeats",
    type=click.IntRange(2, 1000),
    help="re-run K times with fresh seeds: the environment's verification protocol",
)
@click.option("--save", is_flag=True, help="store it as a run, so the leaderboard ranks it")
@click.option("--name", default="human", show_default=True, help="the agent name it is saved as")
@click.option(
    "--db", envvar="PROGRESSBENCH_DB", default=None, help="database for --save [progressbench.db]"
)
def evaluate(
    program: str,
    env_opts: tuple[str, ...],
    as_json: bool,
    repeats: int | None,
    save: bool,
    name: str,
    db: str | None,
    **flags: object,
) -> None:
    """Score one program exactly as a child of a run is scored: edit scope, static guards,
    smoke check, the sandboxed evaluation, the environment's verdict and the result guards.

    Exit status: 0 valid, 1 invalid / rejected / failed, 2 a mistake in the input.

    \b
    Examples:
      progressbench eval --env circle-packing my_packing.py
      progressbench eval --env circle-packing my_packing.py --save --name alice
      progressbench eval --env task:path/to/task path/to/task/initial_program.py --json
      progressbench eval --env nanogpt --variant tiny train.py --repeats 4
    """
    from progressbench.analysis.evaluate import as_dict, evaluate_program, render
    from progressbench.errors import UserError
    from progressbench.run.config import flag_overrides, validate_config

    if save and not name.strip():
        raise UserError("--name needs a name to save the program under")
    overrides = flag_overrides(flags, (), env_opts)
    config = validate_config({k: v for k, v in overrides.items() if v is not None})
    from progressbench.store.database import resolve_url

    url = resolve_url(db) if save else None  # a bad --db fails now, not after the evaluation
    say = (lambda _: None) if as_json else (lambda m: click.echo(m, err=True))
    result = evaluate_program(program, config, url, name.strip(), repeats, say=say)
    click.echo(json.dumps(as_dict(result), indent=2) if as_json else render(result))
    sys.exit(0 if result.status == "valid" else 1)


@click.command()
@click.argument("env")
@click.option("--variant", help="the variant whose data to fetch")
@click.option("--dest", type=click.Path(file_okay=False), help="where to put it")
@click.option("--option", "opts", multiple=True, metavar="KEY=VALUE", help="environment-specific")
def data(env: str, variant: str | None, dest: str | None, opts: tuple[str, ...]) -> None:
    """Download or generate the data an environment needs (e.g. nanogpt shards)."""
    from pathlib import Path

    from progressbench import plugins as pl
    from progressbench.run.config import parse_pairs

    environment = pl.get_environment(env)
    chosen = environment.pick_variant(variant)
    options = parse_pairs(opts, "--option")
    click.echo(environment.fetch_data(chosen, Path(dest) if dest else None, options))
