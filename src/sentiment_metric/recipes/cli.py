"""The ``sentiment-metric`` command: demo, train, evaluate, retrieve, embed, ablation,
textures.

``main(argv)`` returns the exit status: 0 on success, 1 for a bad value or path (one line on
stderr, never a traceback), 2 for a bad command line (argparse), 130 when interrupted. This
module parses and dispatches; each command's options and work are in
:mod:`~sentiment_metric.recipes.commands`, imported once a command is named: ``--help`` and
``--version`` load no torch and answer at once.

Example:
    >>> from sentiment_metric.recipes.cli import build_parser
    >>> args = build_parser().parse_args(["demo", "--quick", "--out", "x"])
    >>> args.command, args.quick, args.out
    ('demo', True, 'x')
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from .. import __version__
from ..errors import SentimentMetricError

__all__ = ["COMMAND_HELP", "build_parser", "main"]

PROG = "sentiment-metric"

COMMAND_HELP = {
    "demo": "compare three objectives (softmax, + PML triplet, + sentiment constraints) on "
    "generated textures",
    "train": "train a model on a dataset",
    "evaluate": "evaluate a checkpoint: JSON + markdown + confusion matrix",
    "retrieve": "top k gallery images for query images: table + grid",
    "embed": "export embeddings + labels + paths (.pt, .npz or .npy)",
    "ablation": "the paper's ablation: 7 objectives, mean ± std over seeds",
    "textures": "write generated textures as PNG files in emotion folders (to try retrieve on)",
}
"""The commands, in the order ``--help`` lists them, with their one-line help."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (``prog: error: message (see --help)``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _commands() -> ModuleType:
    """:mod:`~sentiment_metric.recipes.commands`, imported when first needed (it loads torch;
    the one deferred import of the package, so that ``--help`` is fast)."""
    return importlib.import_module(".commands", __package__)


def build_parser(*, options: bool = True) -> argparse.ArgumentParser:
    """The ``sentiment-metric`` argument parser; ``options=False`` leaves out the commands'
    own options (enough for ``--help``, ``--version`` and an unknown command)."""
    p = _Parser(
        prog=PROG,
        description="Affective image retrieval and classification by deep metric learning "
        "(Yang et al., AAAI 2018). Start with `sentiment-metric demo`.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    commands = _commands() if options else None
    for name, help_ in COMMAND_HELP.items():
        parser = sub.add_parser(name, help=help_)
        if commands is not None:
            commands.add_options(name, parser)
    return p


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and getattr(err, "filename", None) and err.strerror:
        text = f"{err.strerror}: {err.filename!r}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _parse_and_run(argv: list[str], command: str | None) -> int:
    parser = build_parser(options=command is not None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, argparse errors (status 2)
        return int(exit_.code) if isinstance(exit_.code, int) else 2
    return int(_commands().run(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    named = next((a for a in argv if not a.startswith("-")), None)
    command = named if named in COMMAND_HELP else None
    try:
        return _parse_and_run(argv, command)
    except (SentimentMetricError, OSError) as err:
        print(f"{PROG} {command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except ImportError as err:  # an optional dependency is missing
        missing = getattr(err, "name", None) or _one_line(err)
        print(
            f"{PROG} {command}: error: the package {missing!r} is needed here and is not "
            "installed (pip install 'sentiment-metric[train]')",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
