"""Adapters: printcore's connections to files, storage, mail, the web and the database."""
