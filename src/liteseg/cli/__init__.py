"""The ``liteseg`` command line: ``liteseg <command> ...`` (see ``liteseg --help``)."""
