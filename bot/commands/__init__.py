"""The bot's commands, one module per verb (``schedule``, ``retrigger``, ...)."""
