"""HTML / Markdown / JSON reports of pipeline runs: `workbench report RUN... --out reports/NAME`."""

from workbench.report.build import build_report

__all__ = ["build_report"]
