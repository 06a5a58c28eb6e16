//! One module per subcommand.

pub(crate) mod check;
pub(crate) mod migrate;
pub(crate) mod next;
