"""The store: sqlmodel tables and the Store that writes them as things happen."""
