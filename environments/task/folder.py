"""Reading a task folder in the platform, without running any of its code: which files it has,
what its evaluator defines, what its config says and which packages it needs. Every problem is
one ``UserError`` line naming the file.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from progressbench import EditError, UserError, edits, parse_program

PROGRAM = "initial_program.py"
EVALUATOR = "evaluator.py"
CONFIG = "config.yaml"
REQUIREMENTS = "requirements.txt"
STAGES = ("evaluate_stage1", "evaluate_stage2", "evaluate_stage3")
DEFAULT_TIMEOUT = 60.0
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class EvaluatorSection(BaseModel):
    """The parts of config.yaml's ``evaluator`` section that carry over; the rest (parallel
    evaluations, LLM feedback, ...) belongs to the other framework's search and is ignored."""

    model_config = ConfigDict(extra="ignore")

    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, le=86_400)
    cascade_evaluation: bool = True
    cascade_thresholds: list[float] = Field(default_factory=list)


class PromptSection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    system_message: str = ""


class TaskConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: PromptSection = Field(default_factory=PromptSection)
    evaluator: EvaluatorSection = Field(default_factory=EvaluatorSection)


class TaskSpec(BaseModel):
    """Everything the platform and the sandbox need to know about one task folder."""

    root: Path
    program: str
    stages: list[str]
    config: TaskConfig
    requirements: list[str]
    imports: list[str]

    @property
    def evaluator(self) -> Path:
        return self.root / EVALUATOR

    @property
    def cascade(self) -> bool:
        """Whether stage 1 is the smoke check and the stages make the full evaluation."""
        return self.config.evaluator.cascade_evaluation and STAGES[0] in self.stages

    @property
    def packages(self) -> list[str]:
        """What candidates may import beyond the standard library: requirements.txt's
        packages and what the initial program imports."""
        return list(dict.fromkeys([*self.requirements, *self.imports]))


def load_task(where: str) -> TaskSpec:
    """The task folder ``where`` (a path), checked; a one-line ``UserError`` otherwise."""
    root = Path(where).expanduser()
    if not where.strip():
        raise UserError("--env task:PATH needs the path of a task folder")
    if not root.exists():
        raise UserError(f"task folder {where}: does not exist")
    if not root.is_dir():
        raise UserError(f"task folder {where}: is not a directory")
    root = root.resolve()
    for needed in (PROGRAM, EVALUATOR):
        if not (root / needed).is_file():
            raise UserError(
                f"task folder {root}: has no {needed} (a task holds {PROGRAM} and {EVALUATOR}, "
                f"optionally {CONFIG} and {REQUIREMENTS})"
            )
    program = _read(root / PROGRAM)
    program_tree = _parse(root / PROGRAM, program)
    try:
        edits.evolve_regions(program)
    except EditError as exc:
        raise UserError(f"{root / PROGRAM}: {exc}") from None
    defined = _top_level_functions(_parse(root / EVALUATOR, _read(root / EVALUATOR)))
    if "evaluate" not in defined:
        raise UserError(f"{root / EVALUATOR}: defines no evaluate(program_path) function")
    return TaskSpec(
        root=root,
        program=program,
        stages=[s for s in STAGES if s in defined],
        config=_config(root / CONFIG),
        requirements=_requirements(root / REQUIREMENTS),
        imports=_third_party_imports(program_tree),
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read ({exc})") from None


def _parse(path: Path, text: str) -> ast.Module:
    try:
        return parse_program(text, str(path))
    except SyntaxError as exc:
        raise UserError(f"{path}: line {exc.lineno}: syntax error: {exc.msg}") from None


def _top_level_functions(tree: ast.Module) -> set[str]:
    """Names bound at the top level to a function (``def`` or an assignment)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def _third_party_imports(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module.split(".")[0])
    stdlib = sys.stdlib_module_names | {"__future__"}
    return sorted({m for m in found if m not in stdlib})


def _config(path: Path) -> TaskConfig:
    if not path.is_file():
        return TaskConfig()
    import yaml

    try:
        values: Any = yaml.safe_load(_read(path)) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: must be a mapping (prompt:, evaluator:, ...)")
    try:
        return TaskConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UserError(f"{path}: {where}: {err['msg']}") from None


def _requirements(path: Path) -> list[str]:
    """The package names of requirements.txt (versions, extras and markers left to pip)."""
    if not path.is_file():
        return []
    names = []
    for line in _read(path).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _REQUIREMENT.match(line)
        if match is None:
            raise UserError(f"{path}: cannot read the requirement {line!r}")
        names.append(match.group(1))
    return names
