//! Route → authorization action, from the operation table of `cph-wire`.

use std::collections::HashMap;
use std::sync::LazyLock;

static SINGLE: LazyLock<HashMap<(String, String), Option<&'static str>>> = LazyLock::new(|| {
    let mut m: HashMap<(String, String), Option<&'static str>> = HashMap::new();
    for op in cph_wire::ops::OPERATIONS {
        m.entry((op.method.to_string(), op.path.to_string()))
            .and_modify(|a| *a = None)
            .or_insert(Some(op.action));
    }
    m
});

/// The action of the operation served by `method` + route template, when exactly one is.
pub fn single_action(method: &str, route: &str) -> Option<&'static str> {
    SINGLE
        .get(&(method.to_string(), route.to_string()))
        .copied()
        .flatten()
}

/// The action of the operation named `name` (SDK name).
pub fn action_of(name: &str) -> &'static str {
    cph_wire::ops::OPERATIONS
        .iter()
        .find(|o| o.name == name)
        .map(|o| o.action)
        .unwrap_or("cph:*:*")
}
