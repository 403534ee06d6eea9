"""``crawler-report`` / ``python -m crawler.report MANIFEST``: write the HTML report."""

from __future__ import annotations

import sys

from crawler import constants as c
from crawler.cli.flags import report_parser
from crawler.exceptions import CrawlerError
from crawler.report.build import write_report


def main(argv: list[str] | None = None) -> int:
    """``crawler-report`` / ``python -m crawler.report MANIFEST``: write the report and
    print its path; returns the exit code."""
    args = report_parser().parse_args(argv)
    try:
        output = args.manifest.parent if args.output is None else args.output
        print(write_report(args.manifest, output, args.out, args.sample), flush=True)
    except CrawlerError as exc:
        print(f"crawler-report: error: {exc}", file=sys.stderr)
        return c.EXIT_ERROR
    except KeyboardInterrupt:
        print("crawler-report: interrupted", file=sys.stderr)
        return c.EXIT_INTERRUPTED
    return c.EXIT_OK
