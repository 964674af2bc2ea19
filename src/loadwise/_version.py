"""The installed version of loadwise, written into every manifest."""

__version__ = "0.1.0"
