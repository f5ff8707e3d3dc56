"""Linkage: records to persons of the spine, by keyed tokens (trace steps, then Fellegi-Sunter).

`link` is the engine the pipeline calls on pseudonymised token tables in DuckDB;
`link_tables` links two identifiable pyarrow tables through the same engine.
"""

from ldm.linkage.engine import ALGORITHM_VERSION, LinkageConfig, LinkageRun, link
from ldm.linkage.fellegi_sunter import ProbabilisticConfig
from ldm.linkage.tables import link_tables

__all__ = ["ALGORITHM_VERSION", "LinkageConfig", "LinkageRun", "ProbabilisticConfig", "link", "link_tables"]
