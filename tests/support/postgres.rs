//! A fresh Postgres database per test, dropped when the guard goes.

use sea_orm::{ConnectionTrait, Database};

/// The server the tests create databases on.
pub fn admin_url() -> String {
    std::env::var("CRONMESH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for the life of this value.
pub struct TempDatabase {
    name: String,
    url: String,
}

impl TempDatabase {
    /// Creates `cronmesh_test_<uuid>` on the test server.
    pub async fn create() -> TempDatabase {
        let admin = admin_url();
        let name = format!("cronmesh_test_{}", uuid::Uuid::new_v4().simple());
        let db = Database::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("test Postgres at {admin} is unreachable: {e}"));
        db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        db.close().await.ok();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        TempDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside a runtime; do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let db = Database::connect(&admin_url()).await.ok()?;
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
