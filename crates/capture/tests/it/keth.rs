//! Tests of the keth importer (to be written).
