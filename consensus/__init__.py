"""PBFT replica as a sans-I/O state machine. Imports none of the other assetledger layers."""
