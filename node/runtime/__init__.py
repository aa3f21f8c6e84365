"""The validator process: drives the replica with trio, persists, executes, serves."""
