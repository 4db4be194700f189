"""Plain functions that do the work; views and the API only parse and present."""
