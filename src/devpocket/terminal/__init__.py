"""Terminal sessions: local shells and SSH in a PTY, their output, marks and command blocks."""
