"""`python -m workbench.cli`: the same entry point as the `workbench` console script."""

from workbench.cli import main

main()
