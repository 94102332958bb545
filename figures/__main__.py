"""`python -m figures` re-derives the template's figures and rewrites every marker in README.md and
RELIABILITY.md from results/; `python -m figures --check` only reports disagreements (exit 1)."""
import argparse
import sys

import figures
from figures import template


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report disagreements, change nothing")
    args = parser.parse_args(argv)
    problems = []
    if not args.check:
        template.write()
    for document in figures.DOCUMENTS:
        problems += figures.check(document) if args.check else figures.render(document)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
