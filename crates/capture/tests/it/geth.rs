//! Tests of the geth importer (to be written).
