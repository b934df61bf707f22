"""Where log lines come from: a command runner (local shell or SSH) behind one LogSource."""
