"""DevPocket API: the server behind an AI-powered terminal for phones."""

__version__ = "0.1.0"
