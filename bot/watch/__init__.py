"""Follow-ups: watching mail that is not final until it is (the Slack button, `mailtrace watch`)."""
