//! The registry: every declared task and shared trigger conf, validated together.
//!
//! Building a registry never stops at the first problem: duplicate names, unparsable
//! triggers, unknown trigger confs and bad fields are all collected, so `cronmesh check`
//! can show an operator everything that is wrong in one go.

use std::collections::BTreeMap;
use std::fmt;

use crate::task::{TaskDecl, TaskSpec};
use crate::trigger::Trigger;

/// Something wrong with a declaration or a trigger conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the faulty declaration is (`src/orders/cron_tasks.rs:12`, `trigger conf "x"`).
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.origin, self.message)
        }
    }
}

/// Validated tasks (by name) and every problem found on the way.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    tasks: BTreeMap<String, TaskSpec>,
    confs: BTreeMap<String, Trigger>,
    problems: Vec<Problem>,
}

impl Registry {
    /// Validates `decls` together against the shared trigger `confs` (name, trigger JSON).
    pub fn build(
        decls: impl IntoIterator<Item = TaskDecl>,
        confs: impl IntoIterator<Item = (String, String)>,
    ) -> Registry {
        let mut registry = Registry::default();
        for (name, json) in confs {
            match Trigger::from_json(&json) {
                Ok(t) => {
                    registry.confs.insert(name, t);
                }
                Err(e) => registry.problems.push(Problem {
                    origin: format!("trigger conf {name:?}"),
                    message: e.to_string(),
                }),
            }
        }
        let mut origins: BTreeMap<String, String> = BTreeMap::new();
        for decl in decls {
            if let Some(first) = origins.get(&decl.name) {
                registry.problems.push(Problem {
                    origin: decl.origin.clone(),
                    message: format!(
                        "task {:?} is declared twice (first at {}); task names must be unique",
                        decl.name,
                        if first.is_empty() { "?" } else { first }
                    ),
                });
                registry.tasks.remove(&decl.name);
                continue;
            }
            origins.insert(decl.name.clone(), decl.origin.clone());
            match decl.validate(|name| registry.confs.get(name).cloned()) {
                Ok(spec) => {
                    registry.tasks.insert(spec.name.clone(), spec);
                }
                Err(errors) => registry
                    .problems
                    .extend(errors.into_iter().map(|e| Problem {
                        origin: decl.origin.clone(),
                        message: e.to_string(),
                    })),
            }
        }
        registry
    }

    /// Valid tasks, by name. A name declared twice is in neither list of tasks.
    pub fn tasks(&self) -> impl Iterator<Item = &TaskSpec> {
        self.tasks.values()
    }

    /// A valid task by name.
    pub fn get(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.get(name)
    }

    /// The shared trigger confs that parsed.
    pub fn confs(&self) -> &BTreeMap<String, Trigger> {
        &self.confs
    }

    /// Every problem found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_problems_are_collected_together() {
        let decls = vec![
            TaskDecl::cron("orders.sync", "*/5 * * * *")
                .handler("h")
                .origin("a.rs:1"),
            TaskDecl::cron("orders.sync", "0 * * * *")
                .handler("h")
                .origin("b.rs:2"),
            TaskDecl::cron("orders.bad", "0 0 32 * *")
                .handler("h")
                .origin("c.rs:3"),
            TaskDecl::trigger_conf("orders.nightly", "nightly")
                .handler("h")
                .origin("d.rs:4"),
            TaskDecl::trigger_conf("orders.weekly", "weekly")
                .handler("h")
                .origin("e.rs:5"),
            TaskDecl::cron("billing.run", "@daily")
                .handler("h")
                .origin("f.rs:6"),
        ];
        let confs = vec![
            (
                "nightly".to_owned(),
                r#"{"type":"cron","expr":"0 2 * * *"}"#.to_owned(),
            ),
            (
                "broken".to_owned(),
                r#"{"type":"interval","every_secs":60}"#.to_owned(),
            ),
        ];
        let reg = Registry::build(decls, confs);
        let problems: Vec<String> = reg.problems().iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].starts_with("trigger conf \"broken\"") && problems[0].contains("anchor")
        );
        assert!(
            problems[1].starts_with("b.rs:2")
                && problems[1].contains("declared twice (first at a.rs:1)")
        );
        assert!(problems[2].starts_with("c.rs:3") && problems[2].contains("day-of-month 32"));
        assert!(problems[3].starts_with("e.rs:5") && problems[3].contains("\"weekly\""));
        let names: Vec<&str> = reg.tasks().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["billing.run", "orders.nightly"]);
        assert!(!reg.is_clean());
    }
}
