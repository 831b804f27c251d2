//! The terminal: the `init` menu and colour for check lines and diffs.

pub mod menu;
pub mod style;
