"""The local Arc mesh: installs and supervises the real servers and the services."""
