"""taskbot: schedule and follow Taskcluster jobs from pull-request comments, IRC and the web."""

__version__ = "0.1.0"
