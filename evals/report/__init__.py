"""Self-contained HTML reports of eval and training runs (`rft report`)."""
