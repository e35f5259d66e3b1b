"""The command line. Heavy modules are imported inside commands so ``--help`` stays instant."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from progressbench import commands
from progressbench.viewer import commands as viewer_commands

DB_HELP = "database: a file path (SQLite, default ./progressbench.db) or any SQLAlchemy URL"


class CLIGroup(click.Group):
    """Turns user mistakes (UserError) into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        from progressbench.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:  # Ctrl-C (or a run's SIGTERM) outside a run loop: not click's 1
            click.echo("\ninterrupted", err=True)
            sys.exit(130)


def _db_option(f: Any) -> Any:
    return click.option("--db", envvar="PROGRESSBENCH_DB", default=None, help=DB_HELP)(f)


def _run_settings(f: Any) -> Any:
    """The settings ``run`` and ``compare`` share (every run of a comparison gets them)."""
    options = [
        click.option("--env", "env", help="environment (`progressbench plugins`) [circle-packing]"),
        click.option("--variant", help="environment variant, e.g. nanogpt: tiny | speedrun"),
        click.option("--budget", type=int, help="child programs to evaluate per run [100]"),
        click.option("--workers", type=int, help="parallel evaluations [cores / cpus each]"),
        click.option("--max-cost", type=float, help="stop a run once its LLM spend reaches USD"),
        click.option("--api-base", help="URL of an OpenAI-compatible server for the LLM agents"),
        click.option(
            "--strategy-option", "strategy_opts", multiple=True, metavar="KEY=VALUE",
            help="strategy setting, e.g. islands=4 (repeatable)",
        ),
        click.option(
            "--env-option", "env_opts", multiple=True, metavar="KEY=VALUE",
            help="environment setting passed to its harness (repeatable)",
        ),
        click.option(
            "--config", "config_file", type=click.Path(dir_okay=False),
            help="TOML or YAML file with any of these settings; flags override it",
        ),
        _db_option,
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    return f


def _open(db: str | None, create: bool = False) -> Any:
    """The store; only commands that write runs create a missing database."""
    from progressbench.store import Store

    return Store(db, create=create)


def _say(message: str) -> None:
    click.echo(message, err=True)


def _metric(config: Any) -> tuple[Any, str]:
    """The environment of ``config`` and the metric its progress line shows."""
    from progressbench import plugins

    env = plugins.get_environment(config.env)
    return env, env.objective(env.pick_variant(config.variant)).metric


def _drive(
    store: Any,
    config: Any,
    existing: Any,
    metric: str,
    say: Callable[[str], None],
    interrupted: Callable[[Any], str],
) -> Any:
    """Execute one run under a progress line; on Ctrl-C or SIGTERM print ``interrupted(run)``
    and leave."""
    from progressbench.run.loop import RunLoop
    from progressbench.run.progress import Progress
    from progressbench.run.session import run_to_end, stop_on_signals

    stop_on_signals()
    progress = Progress(metric)
    loop = RunLoop(store, config, run=existing, say=say, progress=progress)
    return run_to_end(loop, progress, interrupted)


@click.group(cls=CLIGroup)
@click.version_option(package_name="progressbench")
def cli() -> None:
    """progressbench: agents evolve programs toward open scientific objectives, and the
    leaderboard ranks the real progress they make.

    \b
    Start:     progressbench run                      (circle-packing, offline agent)
               progressbench run --env nanogpt --agent openai/gpt-5 --budget 200
    Inspect:   progressbench show RUN_ID | best RUN_ID --diff | ideas RUN_ID
    Compare:   progressbench leaderboard [--env ENV] [--format table|markdown|json|html]
    Extend:    progressbench plugins   (environments, strategies, agents, guards, evaluators)
    """


@cli.command()
@_run_settings
@click.option("--strategy", help="search strategy: islands | greedy | best-of-n [islands]")
@click.option(
    "--agent",
    "agents",
    multiple=True,
    help="offline | replay:RUN_ID | any litellm model (provider/model); repeat for an ensemble",
)
@click.option("--weight", "weights", multiple=True, type=float, help="ensemble weight per --agent")
@click.option("--seed", type=int, help="random seed [0]")
@click.option("--n-fast", type=int, help="fast error catcher: retries with the error fed back [3]")
@click.option(
    "--evaluator", help="where candidates run: local (isolated workers) | ray | a plugin's [local]"
)
@click.option("--timeout", "timeout_s", type=float, help="wall-time limit per evaluation, seconds")
@click.option("--memory-mb", type=int, help="memory limit per evaluation")
@click.option(
    "--prompts",
    "prompt_dir",
    type=click.Path(file_okay=False),
    help="folder of prompt template overrides (<env>/<name>.txt or <name>.txt)",
)
@click.option(
    "--program", type=click.Path(), help="evolve this .py file or directory (main.py runs)"
)
@click.option(
    "--whole-file", is_flag=True, default=None, help="with --program: agents edit all of it"
)
@click.option(
    "--resume",
    "resume",
    metavar="RUN_ID",
    help="continue an interrupted run (only --budget, --max-cost, --workers may change)",
)
def run(
    config_file: str | None,
    resume: str | None,
    db: str | None,
    agents: tuple[str, ...],
    weights: tuple[float, ...],
    strategy_opts: tuple[str, ...],
    env_opts: tuple[str, ...],
    **flags: Any,
) -> None:
    """Evolve programs for an environment and record everything in the database.

    With no --agent and no provider key the built-in offline agent runs (no network).
    Ctrl-C stops cleanly and prints the command that resumes the run.

    \b
    Examples:
      progressbench run
      progressbench run --env circle-packing --strategy best-of-n --budget 50 --seed 3
      progressbench run --env nanogpt --variant tiny --budget 6
      progressbench run --agent openai/gpt-5 --agent anthropic/claude-sonnet-4-5 --weight 2 --weight 1
      progressbench run --resume 20261123-190501-a1b2c3
    """
    from progressbench.errors import UserError
    from progressbench.run.config import flag_overrides, load_config, resume_config

    if resume is not None and not resume.strip():
        raise UserError("--resume needs a run id (`progressbench leaderboard` lists them)")
    store = _open(db, create=resume is None)
    overrides = flag_overrides(flags, strategy_opts, env_opts, agents=agents, agent_weights=weights)
    if resume is not None:
        store.claim(store.get_run(resume).id)  # one process runs a run: a second one exits 2
        config, existing = resume_config(store, resume, overrides, config_file)
    else:
        config, existing = load_config(config_file, overrides), None
    _execute(store, config, existing)


def _execute(store: Any, config: Any, existing: Any) -> None:
    from progressbench.analysis.report import interrupted_text, run_summary

    env, metric = _metric(config)
    final = _drive(store, config, existing, metric, _say, lambda run: interrupted_text(store, run))
    click.echo(run_summary(store, final, env))


@cli.command()
@click.argument("run_id")
@click.option("--frontier", is_flag=True, help="print the efficiency frontier of the run")
@click.option(
    "--top", type=click.IntRange(min=1), default=10, show_default=True, help="programs to list"
)
@_db_option
def show(run_id: str, frontier: bool, top: int, db: str | None) -> None:
    """Summarise a run: config, strategy state, best programs, failures, telemetry, cost."""
    from progressbench.analysis.report import show_run

    click.echo(show_run(_open(db), run_id, frontier=frontier, top=top))


@cli.command()
@click.argument("run_id")
@click.option("--diff", is_flag=True, help="unified diff against the reference program")
@click.option("--program", "program_id", type=int, help="a specific program instead of the best")
@_db_option
def best(run_id: str, diff: bool, program_id: int | None, db: str | None) -> None:
    """Print the best valid program of a run (or its diff against the reference)."""
    from progressbench.analysis.report import best_program

    click.echo(best_program(_open(db), run_id, diff=diff, program_id=program_id), nl=False)


@cli.command()
@click.argument("run_id")
@_db_option
def ideas(run_id: str, db: str | None) -> None:
    """List a run's ideas (meta-prompting stage 1) ranked by their effect on the score."""
    from progressbench.analysis.report import ideas_table

    click.echo(ideas_table(_open(db), run_id))


@cli.command()
@click.option("--env", help="only this environment")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option("--verified-only", is_flag=True, help="only runs whose best program passed `verify`")
@_db_option
def leaderboard(env: str | None, fmt: str, verified_only: bool, db: str | None) -> None:
    """Rank agent + strategy runs on each environment (variants never mixed).

    The "verified" column shows the verdict of `progressbench verify` on the run's best program.
    """
    from progressbench import plugins
    from progressbench.analysis import leaderboard as lb

    store = _open(db)
    found = lb.rows(store, env, verified_only)
    if env and not found:  # an unknown name is an error, not "no runs yet"
        stored_as = plugins.get_environment(env).name  # task:PATH as runs store it
        found = lb.rows(store, stored_as, verified_only) if stored_as != env else found
    click.echo(lb.render(found, fmt))


@cli.command()
@_run_settings
@click.option("--agent", "agents", multiple=True, help="a contender's agent (repeatable) [offline]")
@click.option(
    "--strategy", "strategies", multiple=True, help="a contender's strategy (repeatable) [islands]"
)
@click.option(
    "--seeds", type=click.IntRange(1, 1000), default=3, show_default=True, help="runs per contender"
)
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table")
@click.option("--plot", callback=viewer_commands.plot_target, help="also draw it to FILE.png|svg")
def compare(
    agents: tuple[str, ...],
    strategies: tuple[str, ...],
    seeds: int,
    strategy_opts: tuple[str, ...],
    env_opts: tuple[str, ...],
    config_file: str | None,
    fmt: str,
    plot: str | None,
    db: str | None,
    **flags: Any,
) -> None:
    """Run every agent x strategy contender with the same seeds and budget, and compare.

    Each contender runs on seeds 0..N-1; the table gives the mean, spread and range of each
    one's best result, its progress over the reference, and Welch's t-test p-value that it
    beats the first contender. Every run is stored (the leaderboard shows them); the same
    command again reuses finished runs and resumes an interrupted one.

    \b
    Examples:
      progressbench compare --strategy islands --strategy greedy --strategy best-of-n --budget 50
      progressbench compare --agent openai/gpt-5-mini --agent offline --seeds 3 --max-cost 2
    """
    from progressbench.analysis import compare as cmp
    from progressbench.run.config import flag_overrides, load_config

    store = _open(db, create=True)
    base = load_config(config_file, flag_overrides(flags, strategy_opts, env_opts))
    chosen_agents, chosen_strategies = cmp.contenders(base, agents, strategies)
    _, metric = _metric(base)

    def execute(config: Any, existing: Any) -> Any:
        return _drive(store, config, existing, metric, lambda _: None, lambda _: cmp.RESUME_HINT)

    result = cmp.compare(store, base, chosen_agents, chosen_strategies, seeds, execute, say=_say)
    click.echo(cmp.render(result, fmt))
    if plot:
        click.echo(viewer_commands.plot_comparison(result, plot))


@cli.command()
@click.argument("run_id")
@click.option("--program", "program_id", type=int, help="the program to verify [the run's best]")
@click.option(
    "--repeats",
    type=click.IntRange(2, 1000),
    default=5,
    show_default=True,
    help="independent re-runs with fresh seeds",
)
@click.option("--workers", type=click.IntRange(1, 256), help="parallel re-runs [as the run]")
@_db_option
def verify(
    run_id: str, program_id: int | None, repeats: int, workers: int | None, db: str | None
) -> None:
    """Re-run a program K times with fresh seeds and test its result statistically.

    Records mean, spread and a one-sample t-test against the objective's target (nanogpt:
    mean val loss below the target with p < 0.01), and the comparison with the reference.
    Where the environment names a cost (nanogpt), each re-run is paired with a reference
    re-run on its seed, interleaved, and a paired test on the cost ratio says whether it is
    faster (p < 0.01, with the ratio's CI). The leaderboard marks verified (and verified
    faster) runs.
    """
    from progressbench.analysis.verify import verify_program

    result = verify_program(_open(db), run_id, program_id, repeats, workers, say=_say)
    click.echo(result.summary)


@cli.command()
def doctor() -> None:
    """Report the isolation this machine gives candidate programs, and what is missing."""
    from progressbench.sandbox.doctor import capabilities

    for key, value in capabilities().items():
        mark = "yes" if value is True else "no" if value is False else value
        click.echo(f"{key:>24}: {mark}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins(as_json: bool) -> None:
    """List installed plugins, their versions, hooks and what each registered.

    PROGRESSBENCH_LOAD_PLUGINS=name1,name2 limits which external plugins load (empty: none).
    """
    from dataclasses import asdict

    from progressbench import plugins as pl

    infos = pl.describe_plugins()
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
    elif infos:
        click.echo(pl.describe_text(infos))


@cli.command("new-env")
@click.argument("name")
@click.option("--dir", "parent", default=".", type=click.Path(file_okay=False), help="[.]")
def new_env(name: str, parent: str) -> None:
    """Write a working environment plugin package, with its test, to start from."""
    from pathlib import Path

    from progressbench.scaffold import new_environment

    root = new_environment(name, Path(parent))
    click.echo(f"wrote {root}\nnext: pip install -e '{root}[test]' && pytest {root}")


cli.add_command(commands.evaluate)
cli.add_command(commands.data)
cli.add_command(_db_option(viewer_commands.serve))
cli.add_command(_db_option(viewer_commands.plot))


def main() -> None:
    cli(prog_name="progressbench")


if __name__ == "__main__":
    main()
