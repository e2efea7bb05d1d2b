"""What a person touches: the CLI (typer) and the TUI (textual)."""
