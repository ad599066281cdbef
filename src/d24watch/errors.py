"""The error hierarchy: expected failures are ours, anything else is a bug.

D24WatchError
├── ConfigError            bad config or watchlist (exit 2); names the file and key
│   └── ConfigErrors       several at once, all kept in `problems`
├── NotFoundError          a command names an article that is not stored (exit 2)
├── StorageError           the database cannot be opened or written (exit 1)
├── SourceError(url)       one source or page failed; recorded, the cycle goes on
│   ├── FetchError         network, HTTP status, size cap, address guard, redirects
│   └── ParseError         a body that is not a feed or not a page
└── DeliveryError          a channel did not accept a delivery; retried later
"""

from __future__ import annotations


class D24WatchError(Exception):
    """Base of every error d24watch expects and reports in one sentence."""


class ConfigError(D24WatchError):
    """The configuration or the watchlist is invalid."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + problem)


class ConfigErrors(ConfigError):
    """Several problems at once; the message is the first, `problems` holds them all."""

    def __init__(self, problems: list[ConfigError]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(first.path, first.key, first.problem)
        more = len(problems) - 1
        if more:
            self.args = (f"{first} (and {more} more problem{'s' if more > 1 else ''}; run check-config)",)


class NotFoundError(D24WatchError):
    """What a command asks for (an article by URL) is not in the database."""


class StorageError(D24WatchError):
    """The database cannot be used."""


class SourceError(D24WatchError):
    """A source (feed, listing page or article page) could not be used."""

    def __init__(self, url: str, message: str, *, retry_after_s: float | None = None) -> None:
        self.url = url
        self.message = message
        self.retry_after_s = retry_after_s
        super().__init__(f"{url}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in worker processes: pickled back with its fields, not only its message.
        return (_rebuild_source_error, (type(self), self.url, self.message, self.retry_after_s))


class FetchError(SourceError):
    """The HTTP exchange failed or was refused; `status` is the answer's HTTP status, if any."""

    def __init__(
        self, url: str, message: str, *, retry_after_s: float | None = None, status: int | None = None
    ) -> None:
        self.status = status
        super().__init__(url, message, retry_after_s=retry_after_s)


class ParseError(SourceError):
    """The body could not be understood."""


class DeliveryError(D24WatchError):
    """A channel refused or did not answer."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


def _rebuild_source_error(cls: type[SourceError], url: str, message: str, retry_after_s: float | None) -> SourceError:
    return cls(url, message, retry_after_s=retry_after_s)
