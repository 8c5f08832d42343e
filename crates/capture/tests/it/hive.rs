//! Tests of the hive importer (to be written).
