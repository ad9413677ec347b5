"""``python -m liteseg`` (also what ``torchrun -m liteseg`` runs)."""
import sys

from .cli.main import main

sys.exit(main())
