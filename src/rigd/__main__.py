"""``python -m rigd`` is the ``rigd`` command."""

from rigd.service import main

main()
