"""Count distinct visitors from their salted hashes: an exact set while small, then a HyperLogLog.

A visitor hash is 8 bytes (16 hex characters in a click line), already uniformly random: the
redirect makes it with a keyed BLAKE2b and a salt of the day (redirect_fn/handler.py), so it
is used as the HyperLogLog's 64-bit hash as it is.

- Up to EXACT_MAX distinct hashes an item keeps the hashes themselves (a DynamoDB binary set,
  which ADD merges without a read), and the count is exact.
- Past that it keeps HyperLogLog registers instead: 2**15 of them (standard error 0.57%),
  stored zlib-compressed. The estimate is Ertl's improved raw estimator ("New cardinality
  estimation algorithms for HyperLogLog sketches", 2017), accurate from a handful to billions
  with no bias tables.

What an item holds depends only on the set of hashes it was given, not their order or how
they were batched: registers merge by taking the maximum, and the switch from set to
registers depends only on the set's size. So summing regions, shards or days of items (by
`count`) gives the same estimate as one item that saw every hash.

A small module of our own rather than Apache DataSketches: that needs numpy in the aggregator's
package, and its estimate of a sketch built in one order (HIP) differs from one built by merging.
"""
import math
import re
import zlib

PRECISION = 15
REGISTERS = 1 << PRECISION
_RANK_BITS = 64 - PRECISION
MAX_RANK = _RANK_BITS + 1
EXACT_MAX = 100
HASH_BYTES = 8
_VERSION = b"\x01"
_VISITOR_HEX = re.compile(r"[0-9a-f]{16}")
# Compressed registers are about 14 KB at a million visitors and never above the raw 32 KB.
ENCODED_MAX = REGISTERS + 64


def visitor_hash(value):
    """The 8-byte visitor hash in a click line's "v" (16 lower-case hex characters), or None."""
    if not isinstance(value, str) or not _VISITOR_HEX.fullmatch(value):
        return None
    return bytes.fromhex(value)


def new_registers():
    return bytearray(REGISTERS)


def add(registers, hashes):
    """Add 8-byte hashes to registers (in place); returns the registers."""
    for value in hashes:
        number = int.from_bytes(value, "big")
        index = number >> _RANK_BITS
        rest = number & ((1 << _RANK_BITS) - 1)
        rank = _RANK_BITS - rest.bit_length() + 1
        if rank > registers[index]:
            registers[index] = rank
    return registers


def merge(registers, other):
    """Merge other registers into registers (in place, the maximum of each); returns the registers."""
    for index, rank in enumerate(other):
        if rank > registers[index]:
            registers[index] = rank
    return registers


def encode(registers):
    """Registers as stored: a version byte, then the registers zlib-compressed."""
    return _VERSION + zlib.compress(bytes(registers), 9)


def decode(blob):
    """Registers from what encode gave; ValueError for anything else."""
    if not isinstance(blob, (bytes, bytearray)) or len(blob) > ENCODED_MAX or blob[:1] != _VERSION:
        raise ValueError("not an encoded sketch")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(bytes(blob[1:]), REGISTERS + 1)
    except zlib.error:
        raise ValueError("not an encoded sketch") from None
    if len(raw) != REGISTERS or not inflater.eof or max(raw) > MAX_RANK:
        raise ValueError("not an encoded sketch")
    return bytearray(raw)


def estimate(registers):
    """The estimated number of distinct hashes added to registers (Ertl 2017, improved raw estimator)."""
    m = len(registers)
    histogram = [registers.count(rank) for rank in range(MAX_RANK + 1)]
    z = m * _tau(1 - histogram[MAX_RANK] / m)
    for rank in range(_RANK_BITS, 0, -1):
        z = 0.5 * (z + histogram[rank])
    z += m * _sigma(histogram[0] / m)
    return round(m * m / (2 * math.log(2)) / z)


def _sigma(x):
    if x == 1:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x):
    if x in (0, 1):
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if z == previous:
            return z / 3


def count(parts):
    """Distinct visitors across items, each given as (hashes or None, encoded registers or None).

    Exact while the union of the hashes is at most EXACT_MAX and no item holds registers;
    otherwise the estimate of the merged registers. Order and grouping never change it.
    """
    hashes, registers = set(), None
    for exact, blob in parts:
        hashes.update(exact or ())
        if blob is not None:
            registers = merge(registers, decode(blob)) if registers is not None else decode(blob)
    if registers is None and len(hashes) <= EXACT_MAX:
        return len(hashes)
    return estimate(add(registers if registers is not None else new_registers(), hashes))
