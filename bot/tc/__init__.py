"""The bot's Taskcluster layer: find a push's decision task, submit plans, follow tasks."""
