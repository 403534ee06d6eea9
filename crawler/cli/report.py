"""``crawler-report`` / ``python -m crawler.report MANIFEST``: write the HTML report."""

from __future__ import annotations

from crawler import constants as c
from crawler.cli.edge import run_plain
from crawler.cli.flags import report_parser
from crawler.cli.startup import prepare_process
from crawler.console import show
from crawler.exceptions import UsageError
from crawler.manifest import check_readable
from crawler.outputs import check_distinct, listed_before, run_files
from crawler.report.build import write_report


def main(argv: list[str] | None = None) -> int:
    """``crawler-report`` / ``python -m crawler.report MANIFEST``: write the report and
    print its path; returns the exit code."""
    prepare_process()
    args = report_parser().parse_args(argv)

    def body() -> int:
        # --out may be the report beside the manifest (the default), no other of its files
        kept = run_files(args.manifest, args.manifest.parent / c.DEFAULT_KEY_NAME)
        check_readable(args.manifest)  # after run_files: a removed working folder first
        del kept["report"]
        output = args.manifest.parent if args.output is None else args.output
        if not output.is_dir():  # a mistyped --output gave a report with no picture, exit 0
            raise UsageError(f"--output {output} is not a folder (where the stored images are)")
        check_distinct({"--out": args.out}, kept, listed_before(args.manifest), (output,))
        show(str(write_report(args.manifest, output, args.out, args.sample)))
        return c.EXIT_OK

    return run_plain("crawler-report", body)
