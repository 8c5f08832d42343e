//! Tests of the zeth importer (to be written).
