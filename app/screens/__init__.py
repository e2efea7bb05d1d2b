"""One module per TUI screen."""
