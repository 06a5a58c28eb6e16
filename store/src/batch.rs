//! Many rows changed by one statement: `WITH v(..) AS (VALUES ..) UPDATE .. FROM v`.
//!
//! Both SQLite (3.33+) and Postgres accept a `VALUES` list in front of `UPDATE .. FROM v`,
//! which joins each row to its target by key: a hash or index lookup per row, where a `CASE`
//! with an arm per row would cost rows x arms. Callers name the columns once, as a list of
//! [`Field`]s that pairs each column with how to read its value from an item.

use std::fmt::Write as _;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use crate::error::Result;

/// Rows per statement: at most 6 binds a row keeps every chunk well under SQLite's 32,766
/// and Postgres' 65,535 bind parameters.
const UPDATE_CHUNK: usize = 1000;

/// One column of the `VALUES` list and how to read it from an item.
pub(crate) struct Field<T> {
    /// Column name inside `v`.
    pub(crate) name: &'static str,
    /// Its value for one item.
    pub(crate) value: fn(&T) -> Value,
}

impl<T> Field<T> {
    pub(crate) fn new(name: &'static str, value: fn(&T) -> Value) -> Self {
        Field { name, value }
    }
}

/// `WITH v(columns) AS (VALUES (..), (..)) ` with one placeholder per value, in the backend's
/// placeholder syntax, and the values in bind order.
fn values_cte<T>(backend: DbBackend, fields: &[Field<T>], items: &[T]) -> (String, Vec<Value>) {
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let mut sql = format!("WITH v({}) AS (VALUES ", names.join(", "));
    let mut values = Vec::with_capacity(items.len() * fields.len());
    for (i, item) in items.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for (j, field) in fields.iter().enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            values.push((field.value)(item));
            match backend {
                DbBackend::Postgres => {
                    let _ = write!(sql, "${}", values.len());
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql.push_str(") ");
    (sql, values)
}

/// Runs `WITH v(fields) AS (VALUES ..) <update>` over `items`, one statement per chunk, and
/// returns how many rows changed.
pub(crate) async fn update_from_values<T>(
    db: &DatabaseConnection,
    items: &[T],
    fields: &[Field<T>],
    update: &str,
) -> Result<u64> {
    let backend = db.get_database_backend();
    let mut changed = 0;
    for chunk in items.chunks(UPDATE_CHUNK) {
        let (mut sql, values) = values_cte(backend, fields, chunk);
        sql.push_str(update);
        let res = db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        changed += res.rows_affected();
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        let fields: [Field<(i64, &str)>; 2] = [
            Field::new("a", |t| t.0.into()),
            Field::new("b", |t| t.1.into()),
        ];
        let items = [(1, "x"), (2, "y")];
        let (pg, values) = values_cte(DbBackend::Postgres, &fields, &items);
        assert_eq!(pg, "WITH v(a, b) AS (VALUES ($1, $2), ($3, $4)) ");
        let expected: Vec<Value> = vec![1i64.into(), "x".into(), 2i64.into(), "y".into()];
        assert_eq!(values, expected, "bound row by row");
        let (lite, _) = values_cte(DbBackend::Sqlite, &fields, &items);
        assert_eq!(lite, "WITH v(a, b) AS (VALUES (?, ?), (?, ?)) ");
    }
}
