//! Reading a crontab as cron does (crontab(5), Vixie cron / cronie): comments and blank lines,
//! `NAME=value` lines (the environment of the entries that follow; `SHELL` runs them, `PATH`
//! is searched, `CRON_TZ` is their zone, `MAILTO` is kept as a note), the `@` macros, the
//! system format with its user field, and `%` in the command (the first unescaped `%` starts
//! standard input, the others are newlines, `\%` is a percent sign). Pure: text in, entries
//! and the lines that cannot be taken (with their number and why) out.

use std::collections::BTreeMap;

/// One schedule line, as cron would run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CronEntry {
    /// 1-based line number.
    pub(crate) line: usize,
    /// The schedule: five fields, or an `@` macro.
    pub(crate) schedule: String,
    /// The user field of a system crontab.
    pub(crate) user: Option<String>,
    /// The command for the shell, `%` already resolved.
    pub(crate) command: String,
    /// What the command reads on standard input (after the first unescaped `%`).
    pub(crate) stdin: Option<String>,
    /// The environment cron gives it (every `NAME=value` above it, `CRON_TZ` and `MAILTO`
    /// included, with cron's `SHELL` and `PATH` when the file sets none).
    pub(crate) env: BTreeMap<String, String>,
    /// The zone of its schedule (`CRON_TZ` above it), if set.
    pub(crate) zone: Option<String>,
    /// `MAILTO` above it, if set and not empty.
    pub(crate) mailto: Option<String>,
    /// A name asked for with a `# cronmesh: name=NAME` comment just above it.
    pub(crate) name: Option<String>,
}

impl CronEntry {
    /// The shell cron runs the command with.
    pub(crate) fn shell(&self) -> &str {
        self.env.get("SHELL").map_or("/bin/sh", String::as_str)
    }
}

/// A line that is not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) line: usize,
    pub(crate) reason: String,
}

/// Everything in a crontab.
#[derive(Debug, Default)]
pub(crate) struct Crontab {
    pub(crate) entries: Vec<CronEntry>,
    pub(crate) skipped: Vec<Skipped>,
}

const MACROS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// An environment line, `NAME = value` (the value unquoted as cron does), or `None`.
fn env_line(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once('=')?;
    let name = name.trim();
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let value = value.trim();
    let value = match value.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q && value.len() >= 2 => {
            &value[1..value.len() - 1]
        }
        _ => value,
    };
    Some((name.to_owned(), value.to_owned()))
}

/// Splits the first `n` whitespace-separated words off a line; the rest (leading blanks
/// removed) is returned as it is.
fn words(line: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut rest = line.trim_start();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        out.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Some((out, rest))
}

/// Resolves `%` as cron (cronie's `do_command`) does: the command, and the standard input
/// if there is one. In the command a backslash keeps the next character from meaning anything
/// (`\%` is a percent sign, the backslash dropped; before anything else both stay), and the
/// first unescaped `%` ends it. In the input, each unescaped `%` is a newline, `\%` a percent
/// sign, and a newline ends it unless it already ends with one.
fn percent(command: &str) -> (String, Option<String>) {
    let mut cmd = String::new();
    let mut chars = command.chars();
    let mut escaped = false;
    let mut has_input = false;
    for ch in chars.by_ref() {
        if escaped {
            if ch != '%' {
                cmd.push('\\');
            }
            cmd.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' => escaped = true,
            '%' => {
                has_input = true;
                break;
            }
            ch => cmd.push(ch),
        }
    }
    if escaped {
        cmd.push('\\');
    }
    if !has_input {
        return (cmd, None);
    }
    let mut input = String::new();
    let mut escaped = false;
    let mut need_newline = false;
    for mut ch in chars {
        if escaped {
            if ch != '%' {
                input.push('\\');
            }
        } else if ch == '%' {
            ch = '\n';
        }
        escaped = ch == '\\';
        if !escaped {
            input.push(ch);
        }
        need_newline = ch != '\n';
    }
    if escaped {
        input.push('\\');
    }
    if need_newline {
        input.push('\n');
    }
    (cmd, Some(input))
}

/// Reads a crontab; `system` for the /etc/crontab format (a user field after the schedule).
pub(crate) fn parse(text: &str, system: bool) -> Crontab {
    let mut out = Crontab::default();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut name_hint: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_start();
        if line.is_empty() {
            name_hint = None;
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            name_hint = comment
                .trim()
                .strip_prefix("cronmesh:")
                .and_then(|c| c.trim().strip_prefix("name="))
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty());
            continue;
        }
        let hint = name_hint.take();
        if let Some((name, value)) = env_line(line) {
            env.insert(name, value);
            continue;
        }
        let skip = |reason: String| Skipped {
            line: line_no,
            reason,
        };
        let fields = if line.starts_with('@') { 1 } else { 5 } + usize::from(system);
        let Some((head, command)) = words(line, fields) else {
            out.skipped.push(skip(format!(
                "expected {} then a command: {}",
                if system {
                    "a schedule (five fields or an @macro), a user"
                } else {
                    "a schedule (five fields or an @macro)"
                },
                scheduler_core::quoted(line)
            )));
            continue;
        };
        let (schedule, user) = if system {
            (
                head[..head.len() - 1].join(" "),
                head.last().map(|u| (*u).to_owned()),
            )
        } else {
            (head.join(" "), None)
        };
        if schedule.eq_ignore_ascii_case("@reboot") {
            out.skipped.push(skip(
                "@reboot runs when cron starts on one machine; a cluster has no such moment (run it from the host's boot instead)".to_owned(),
            ));
            continue;
        }
        if schedule.starts_with('@') && !MACROS.contains(&schedule.to_ascii_lowercase().as_str()) {
            out.skipped.push(skip(format!(
                "unknown macro {}; cron knows {}",
                scheduler_core::quoted(&schedule),
                MACROS.join(" ")
            )));
            continue;
        }
        if command.trim().is_empty() {
            out.skipped
                .push(skip("the line has a schedule but no command".to_owned()));
            continue;
        }
        let (command, stdin) = percent(command);
        let mut task_env = env.clone();
        task_env
            .entry("SHELL".to_owned())
            .or_insert_with(|| "/bin/sh".to_owned());
        task_env
            .entry("PATH".to_owned())
            .or_insert_with(|| "/usr/bin:/bin".to_owned());
        out.entries.push(CronEntry {
            line: line_no,
            schedule,
            user,
            command,
            stdin,
            zone: env.get("CRON_TZ").filter(|z| !z.is_empty()).cloned(),
            mailto: env.get("MAILTO").filter(|m| !m.is_empty()).cloned(),
            env: task_env,
            name: hint,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_awkward_parts_read_as_cron_reads_them() {
        let text = "\
# a comment
SHELL=/bin/bash
MAILTO=\"ops@example.invalid\"
 PATH = /usr/local/bin:/usr/bin:/bin

CRON_TZ=Europe/Berlin
# cronmesh: name=report
30 2 * * 1-5   /usr/bin/report --day %Y-%m-%d \\%s%line one%line two
@daily  echo 'daily'
@reboot /usr/bin/startup
0 0 31 2 * echo never
5 4 * *
@sometimes echo x
";
        let tab = parse(text, false);
        assert_eq!(tab.entries.len(), 3, "{tab:?}");
        let report = &tab.entries[0];
        assert_eq!(report.line, 8);
        assert_eq!(report.schedule, "30 2 * * 1-5");
        assert_eq!(report.command, "/usr/bin/report --day ");
        // The classic: `date +%Y` in a crontab needs `\%`, or the `%` starts the input.
        assert_eq!(
            report.stdin.as_deref(),
            Some("Y-\nm-\nd %s\nline one\nline two\n")
        );
        assert_eq!(report.shell(), "/bin/bash");
        assert_eq!(report.env["PATH"], "/usr/local/bin:/usr/bin:/bin");
        assert_eq!(report.zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(report.mailto.as_deref(), Some("ops@example.invalid"));
        assert_eq!(report.name.as_deref(), Some("report"));
        assert_eq!(tab.entries[1].schedule, "@daily");
        assert_eq!(tab.entries[1].command, "echo 'daily'");
        assert_eq!(tab.entries[1].name, None);
        // Cron would parse `0 0 31 2 *`; whether it can fire is the importer's to say.
        assert_eq!(tab.entries[2].schedule, "0 0 31 2 *");
        let skipped: Vec<usize> = tab.skipped.iter().map(|s| s.line).collect();
        assert_eq!(skipped, [10, 12, 13]);
        assert!(tab.skipped[0].reason.contains("@reboot"));
        assert!(tab.skipped[2].reason.contains("@sometimes"));
    }

    #[test]
    fn percent_signs_and_backslashes_follow_cronie() {
        assert_eq!(percent("date +\\%s"), ("date +%s".to_owned(), None));
        // A backslash before anything else stays, and does not escape a `%` after it.
        assert_eq!(
            percent("echo a\\\\%in"),
            ("echo a\\\\".to_owned(), Some("in\n".to_owned()))
        );
        assert_eq!(
            percent("cat%x%"),
            ("cat".to_owned(), Some("x\n".to_owned()))
        );
        assert_eq!(percent("cat%"), ("cat".to_owned(), Some(String::new())));
        assert_eq!(
            percent("cat%a\\%b"),
            ("cat".to_owned(), Some("a%b\n".to_owned()))
        );
    }

    #[test]
    fn a_system_crontab_has_a_user_and_cron_defaults_apply() {
        let tab = parse(
            "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n@weekly www echo hi\n",
            true,
        );
        assert_eq!(tab.entries.len(), 2);
        assert_eq!(tab.entries[0].user.as_deref(), Some("root"));
        assert_eq!(
            tab.entries[0].command,
            "cd / && run-parts --report /etc/cron.hourly"
        );
        assert_eq!(tab.entries[0].shell(), "/bin/sh");
        assert_eq!(tab.entries[0].env["PATH"], "/usr/bin:/bin");
        assert_eq!(tab.entries[1].user.as_deref(), Some("www"));
        assert_eq!(tab.entries[1].schedule, "@weekly");
        // Without its user field a system line is short.
        assert_eq!(parse("17 * * * * root\n", true).skipped.len(), 1);
    }
}
