"""Payloads to messages, one module per medium: email (text and HTML) and Slack; pure."""
