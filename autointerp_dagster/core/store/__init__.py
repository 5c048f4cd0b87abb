"""Results in one DuckDB file (schemas in `tables`), heavy data as Parquet beside it: `writes` replaces the
slice of a table a computation owns, `reads` answers the stages' questions."""

from .results import ResultsStore, transaction
from .tables import TABLES

__all__ = ["TABLES", "ResultsStore", "transaction"]
