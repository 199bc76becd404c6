"""Telegram side of the compliance scanner: settings, storage, handlers and the CLI."""
