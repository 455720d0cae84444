"""The errors a conversion stops with: each message names the file or row and what is wrong."""


class ConversionError(RuntimeError):
    """The conversion cannot go on; the message says which file/id and why."""


class BadRowError(ConversionError):
    """One source row is unusable (undecodable, wrong mask size or values)."""

    def __init__(self, row_id: str, shard: str, reason: str):
        self.row_id = row_id
        self.shard = shard
        self.reason = reason
        super().__init__(f'bad row id={row_id!r} in {shard}: {reason}')
