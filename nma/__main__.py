"""``python -m nma`` runs the CLI (also under ``torchrun``)."""

from nma.cli import main

main()
