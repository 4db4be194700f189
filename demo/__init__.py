"""Everything at once on one machine: web site, controller, emulated locker, demo data."""
