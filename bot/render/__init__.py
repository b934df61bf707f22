"""The same SearchResult as terminal text, JSON, or a Slack thread."""
