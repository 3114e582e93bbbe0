//! Integration tests of the syntax layer: snapshots of definitions and imports per language,
//! cursor helpers, incremental parsing against fresh parses, and robustness on garbage.

mod definitions;
mod incremental;
mod near;
mod outline;
mod robustness;
