"""The on-site controller: scanner in, board out, events to the server through an outbox."""

# The controller's software version, reported to the server with its status (the fleet's
# metrics show which cabinet runs which). Raise it with each release that changes the
# controller.
__version__ = "2026.12"
