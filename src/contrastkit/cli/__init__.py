"""The command-line layer (typer). It parses arguments and calls the library; no logic lives here."""
