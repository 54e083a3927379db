"""``python -m arqd`` runs the command line."""

from arqd.cli import main

main()
