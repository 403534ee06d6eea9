"""The HTML run report: a manifest in, one self-contained page out.

``aggregate`` streams the manifest into a bounded ``model.ReportData``, ``html`` renders
it with ``thumbnails`` of stored images, ``build.write_report`` ties them together.
Run it as ``python -m crawler.report MANIFEST`` (see ``crawler.cli``).
"""
