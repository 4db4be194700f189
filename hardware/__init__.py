"""Lock-control boards: wire codecs (pure), the board emulator and the bench tool."""
