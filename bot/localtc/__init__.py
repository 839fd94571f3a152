"""A local Taskcluster (Queue, Index) that speaks the real protocol, for tests and the demo."""
