"""The LMDB transaction type the ledger uses, for type checkers.

The ledger opens every transaction with `buffers=False` (py-lmdb's default), so keys and
values come back as `bytes`. py-lmdb's stubs make `Transaction` generic over that value
type (`bytes`, or `memoryview` with `buffers=True`); annotating with `Txn` says which.
The C extension's class cannot be subscripted at run time, hence TYPE_CHECKING.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import lmdb

if TYPE_CHECKING:
    Txn: TypeAlias = lmdb.Transaction[bytes]
else:
    Txn = lmdb.Transaction
