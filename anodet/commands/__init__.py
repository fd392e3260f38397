"""The subcommands of ``python -m anodet``, each imported only when it runs."""
