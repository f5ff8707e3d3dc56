"""Great Expectations expectations for NHS data that GX does not ship.

Importing this module registers them with GX, so suites that use them can be loaded.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from ldm.feeds.codes import reference_values, snomed_concept_id_is_valid
from ldm.identifiers.normalise import nhs_number_is_valid


class ColumnValuesValidNhsNumber(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ldm_valid_nhs_number"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        valid = nhs_number_is_valid(pa.array(column.astype(object), type=pa.string(), from_pandas=True))
        return pd.Series(valid.to_numpy(zero_copy_only=False), index=column.index)


class ExpectColumnValuesToBeValidNhsNumbers(ColumnMapExpectation):
    """NHS numbers are ten digits (separators allowed) passing the Modulus 11 check."""

    map_metric = "column_values.ldm_valid_nhs_number"
    success_keys = ("mostly",)


class ColumnValuesValidSnomedConceptId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ldm_valid_snomed_concept_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        return column.map(lambda code: snomed_concept_id_is_valid(str(code))).astype(bool)


class ExpectColumnValuesToBeValidSnomedConceptIds(ColumnMapExpectation):
    """SNOMED CT concept ids: 6-18 digits with a valid Verhoeff check digit."""

    map_metric = "column_values.ldm_valid_snomed_concept_id"
    success_keys = ("mostly",)


class ColumnValuesInCodeSystem(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ldm_in_code_system"
    condition_value_keys = ("code_system",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, code_system: str, **kwargs) -> pd.Series:
        return column.isin(reference_values(code_system))


class ExpectColumnValuesToBeInCodeSystem(ColumnMapExpectation):
    """Codes exist in a reference list shipped with ldm (ICD-10 dictionary, Leeds practices)."""

    code_system: str
    map_metric = "column_values.ldm_in_code_system"
    success_keys = ("code_system", "mostly")
