"""The ``semafore`` command: one module per subcommand, registered in :mod:`semafore.cli.main`."""
