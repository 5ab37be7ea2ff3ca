"""``avb-zoo`` subcommands that live outside cli.py (each module one command or group; click only at import)."""
