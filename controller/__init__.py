"""The on-site controller: scanner in, board out, events to the server through an outbox."""
