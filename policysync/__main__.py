from policysync.cli import entry

entry()
