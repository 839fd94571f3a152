"""Finding the push that broke a job: the search itself (no I/O), round by round."""

from bot.culprit.search import Ask, Found, Search, Stopped, Tally

__all__ = ["Ask", "Found", "Search", "Stopped", "Tally"]
