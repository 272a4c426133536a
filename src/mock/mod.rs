//! Mock servers used by the tests, the benchmark and the quickstart.
