"""`assetledger bench`: cluster load benchmark (pre-signed transfers over the client API).

presign.py  holders' keys and the pre-signed transfers (sequential nonces per holder)
setup.py    registers the holders, creates the asset and mints, through real transactions
load.py     drives pre-signed transactions at the cluster and learns commits from receipts
stats.py    percentiles and the result record (`--json` shape)
ceiling.py  the machine's signature-verification ceiling
rss.py      peak resident memory of the node processes, from /proc
cpu.py      CPU time of the node processes, from /proc (cost per transfer)
errors.py   BenchError: one line for the user
target.py   the cluster under test: an existing directory, or a temporary one started here
run.py      the whole run, start to finish
"""
